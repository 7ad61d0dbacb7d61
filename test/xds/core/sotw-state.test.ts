import t from 'tap';
import { SotwTypeState } from '../../../src/xds/core/sotw-state.js';
import type { SotwRequest } from '../../../src/xds/core/requests.js';
import type { Resource } from '../../../src/xds/core/types.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

const res = (name: string, version: string): Resource => ({ name, version, body: Buffer.from(`${name}@${version}`) });
const req = (names: string[], nonce = '', error?: string): SotwRequest => ({
  kind: 'sotw', typeUrl: TypeUrl.Secret, versionInfo: '', resourceNames: names, responseNonce: nonce,
  errorDetail: error === undefined ? undefined : { code: 14, message: error },
});

/** Drives one state like a connection does; nonces n1, n2, ... */
function harness(fullState = false) {
  const state = new SotwTypeState(TypeUrl.Secret, fullState);
  let counter = 0;
  const issued = (n: string) => /^n\d+$/.test(n) && Number(n.slice(1)) <= counter;
  const send = (desired: Resource[]) => {
    const plan = state.plan(desired);
    if (!plan) return undefined;
    counter += 1;
    state.commit(plan, `n${counter}`, 0, 0, false);
    return { nonce: `n${counter}`, names: plan.resources.map((r) => `${r.name}@${r.version}`), version: plan.version };
  };
  return { state, issued, send, receive: (r: SotwRequest) => state.receive(r, issued) };
}

t.test('the first request of a type is always answered, whatever version_info it carries', async (t) => {
  const h = harness();
  const out = h.receive({ ...req(['default']), versionInfo: 'looks-current', responseNonce: 'other-server-nonce' });
  t.equal(out.kind, 'processed');
  t.ok(out.kind === 'processed' && out.generate, 'generate on first request');
  t.same(h.send([res('default', 'v1')])?.names, ['default@v1']);
});

t.test('an ACK never triggers a send', async (t) => {
  const h = harness();
  h.receive(req(['default']));
  const sent = h.send([res('default', 'v1')])!;
  const out = h.receive(req(['default'], sent.nonce));
  t.ok(out.kind === 'processed' && out.acked && !out.generate);
  t.equal(h.state.status(), 'SYNCED');
  t.equal(h.send([res('default', 'v1')]), undefined, 'unchanged content is not sent again');
});

t.test('stale nonce: a request answering an older response is ignored', async (t) => {
  const h = harness();
  h.receive(req(['default']));
  const first = h.send([res('default', 'v1')])!;
  const second = h.send([res('default', 'v2')])!;
  t.equal(h.receive(req(['default', 'new'], first.nonce)).kind, 'stale');
  t.same([...h.state.subscription.names], ['default'], 'the stale request changed nothing');
  const out = h.receive(req(['default'], second.nonce));
  t.ok(out.kind === 'processed' && out.acked?.nonce === second.nonce);
});

t.test('a nonce never issued on this stream counts as no nonce (reconnect)', async (t) => {
  const h = harness();
  h.receive(req(['default']));
  h.send([res('default', 'v1')]);
  const out = h.receive(req(['default', 'ROOTCA'], 'n999'));
  t.ok(out.kind === 'processed' && !out.acked && out.generate);
});

t.test('NACK: the rejected content is never sent again; the next real change is', async (t) => {
  const h = harness();
  h.receive(req(['default', 'ROOTCA']));
  const v1 = h.send([res('default', 'v1'), res('ROOTCA', 'r1')])!;
  h.receive(req(['default', 'ROOTCA'], v1.nonce));
  const bad = h.send([res('default', 'bad'), res('ROOTCA', 'r1')])!;
  t.same(bad.names, ['default@bad'], 'non-full-state types carry only what changed');
  const out = h.receive(req(['default', 'ROOTCA'], bad.nonce, 'invalid certificate'));
  t.ok(out.kind === 'processed' && out.nacked && !out.generate, 'a NACK does not trigger a send');
  if (out.kind === 'processed' && out.nacked) h.state.recordNack(out.nacked.sent, out.nacked.detail, 5);
  t.equal(h.state.lastNack?.message, 'invalid certificate');
  t.equal(h.state.status(), 'STALE');
  t.equal(h.send([res('default', 'bad'), res('ROOTCA', 'r1')]), undefined, 'same content again: suppressed');
  t.equal(h.state.suppressed, 1);
  const next = h.send([res('default', 'good'), res('ROOTCA', 'r1')]);
  t.same(next?.names, ['default@good'], 'the next real change is sent');
});

t.test('a changed subscription re-sends newly requested resources even if unchanged', async (t) => {
  const h = harness();
  h.receive(req(['a']));
  const s1 = h.send([res('a', '1'), res('b', '1')])!;
  t.same(s1.names, ['a@1'], 'unrequested b is not sent');
  h.receive(req(['a'], s1.nonce));
  const out = h.receive(req(['a', 'b'], s1.nonce));
  t.ok(out.kind === 'processed' && out.generate);
  t.same(h.send([res('a', '1'), res('b', '1')])?.names, ['b@1']);
  // unsubscribe then re-subscribe: sent again though unchanged (xds_protocol: a re-subscribed name is sent again)
  h.receive(req(['b'], `n2`));
  h.receive(req(['a', 'b'], `n2`));
  t.same(h.send([res('a', '1'), res('b', '1')])?.names, ['a@1']);
});

t.test('a requested name that does not exist yet is sent when it appears', async (t) => {
  const h = harness();
  h.receive(req(['later']));
  t.equal(h.send([]), undefined, 'no empty response for a non-full-state type');
  t.same(h.send([res('later', '1')])?.names, ['later@1']);
});

t.test('full-state types (LDS/CDS) carry every resource; the first request gets an answer even if empty', async (t) => {
  const h = harness(true);
  h.receive(req(['*']));
  t.same(h.send([])?.names, [], 'empty wildcard answer');
  t.same(h.send([res('l1', '1'), res('l2', '1')])?.names, ['l1@1', 'l2@1']);
  t.same(h.send([res('l1', '2'), res('l2', '1')])?.names, ['l1@2', 'l2@1'], 'one change, full set');
  t.same(h.send([res('l2', '1')])?.names, ['l2@1'], 'a deletion is a response without it');
  t.equal(h.send([res('l2', '1')]), undefined, 'nothing changed');
  const named = harness(true);
  named.receive(req(['l2']));
  named.send([res('l2', '1')]);
  named.receive(req(['l2', 'missing']));
  t.same(named.send([res('l2', '1')])?.names, ['l2@1'], 'a newly requested name that does not exist is answered: its absence says so');
});

t.test('the version is derived from content', async (t) => {
  const a = harness(true); const b = harness(true);
  a.receive(req([])); b.receive(req([]));
  t.equal(a.send([res('x', '1'), res('y', '2')])!.version, b.send([res('y', '2'), res('x', '1')])!.version);
});
