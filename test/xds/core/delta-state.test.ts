import t from 'tap';
import { DeltaTypeState } from '../../../src/xds/core/delta-state.js';
import type { DeltaRequest } from '../../../src/xds/core/requests.js';
import type { Resource } from '../../../src/xds/core/types.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

const res = (name: string, version: string): Resource => ({ name, version, body: Buffer.from(`${name}@${version}`) });
const req = (p: Partial<DeltaRequest>): DeltaRequest => ({
  kind: 'delta', typeUrl: TypeUrl.Cluster, subscribe: [], unsubscribe: [], initialResourceVersions: {}, responseNonce: '', ...p,
});

function harness() {
  const state = new DeltaTypeState(TypeUrl.Cluster);
  let counter = 0;
  const issued = (n: string) => /^n\d+$/.test(n) && Number(n.slice(1)) <= counter;
  const send = (desired: Resource[]) => {
    const plan = state.plan(desired);
    if (!plan) return undefined;
    counter += 1;
    state.commit(plan, `n${counter}`, 0, 0, false);
    return { nonce: `n${counter}`, resources: plan.resources.map((r) => `${r.name}@${r.version}`), removed: plan.removed };
  };
  return { state, send, receive: (r: DeltaRequest) => state.receive(r, issued) };
}

t.test('delta subscribe sends the resource; unsubscribe needs no response', async (t) => {
  const h = harness();
  t.ok(h.receive(req({ subscribe: ['a'] })).generate);
  const s1 = h.send([res('a', '1'), res('b', '1')])!;
  t.same(s1, { nonce: 'n1', resources: ['a@1'], removed: [] });
  t.ok(h.receive(req({ responseNonce: 'n1' })).acked, 'ACK');
  t.notOk(h.receive(req({ responseNonce: 'n1' })).generate, 'an ACK triggers nothing');
  t.ok(h.receive(req({ subscribe: ['b'] })).generate);
  t.same(h.send([res('a', '1'), res('b', '1')])?.resources, ['b@1'], 'only the newly subscribed one');
  const out = h.receive(req({ unsubscribe: ['a'] }));
  t.notOk(out.generate, 'a pure unsubscribe gets no response');
  t.equal(h.send([res('a', '2'), res('b', '1')]), undefined, 'changes to an unsubscribed name are not sent');
});

t.test('removed_resources for subscribed names that do not exist, reported once', async (t) => {
  const h = harness();
  h.receive(req({ subscribe: ['ghost', 'a'] }));
  t.same(h.send([res('a', '1')]), { nonce: 'n1', resources: ['a@1'], removed: ['ghost'] });
  t.equal(h.send([res('a', '1')]), undefined, 'not repeated');
  t.same(h.send([res('ghost', '1'), res('a', '1')])?.resources, ['ghost@1'], 'sent when it appears');
  t.same(h.send([res('a', '1')])?.removed, ['ghost'], 'deleted → removed_resources');
});

t.test('initial_resource_versions: what the client holds at the current version is not resent', async (t) => {
  const h = harness();
  h.receive(req({ subscribe: ['a', 'b', 'c'], initialResourceVersions: { a: '1', b: 'old', c: '1' } }));
  t.same(h.send([res('a', '1'), res('b', '2')]), { nonce: 'n1', resources: ['b@2'], removed: ['c'] });
});

t.test('re-subscribing a name the client already has sends it again (xds_protocol, incremental xDS)', async (t) => {
  const h = harness();
  h.receive(req({ subscribe: ['a'] }));
  h.send([res('a', '1')]);
  t.ok(h.receive(req({ subscribe: ['a'], responseNonce: 'n1' })).generate);
  t.same(h.send([res('a', '1')])?.resources, ['a@1']);
});

t.test('wildcard plus explicit name: unsubscribing the name is answered (xds_protocol incremental corner case)', async (t) => {
  const h = harness();
  h.receive(req({ subscribe: ['*', 'x'] }));
  t.same(h.send([res('x', '1'), res('y', '1')])?.resources, ['x@1', 'y@1']);
  const out = h.receive(req({ unsubscribe: ['x'] }));
  t.ok(out.generate);
  t.same(h.send([res('x', '1'), res('y', '1')])?.resources, ['x@1'], 'still covered by the wildcard: in resources');
  h.receive(req({ subscribe: ['z'] }));
  t.same(h.send([res('x', '1'), res('y', '1')])?.removed, ['z']);
  h.receive(req({ unsubscribe: ['z'] }));
  t.same(h.send([res('x', '1'), res('y', '1')])?.removed, ['z'], 'not covered: in removed_resources');
});

t.test('legacy wildcard in delta, and unsubscribing "*"', async (t) => {
  const h = harness();
  h.receive(req({}));
  t.same(h.send([res('a', '1'), res('b', '1')])?.resources, ['a@1', 'b@1']);
  t.notOk(h.receive(req({ unsubscribe: ['*'] })).generate);
  t.equal(h.send([res('a', '2')]), undefined, 'no longer subscribed to anything');
});

t.test('subscription changes are honoured whatever the nonce', async (t) => {
  const h = harness();
  h.receive(req({ subscribe: ['a'] }));
  h.send([res('a', '1')]);
  h.send([res('a', '2')]);
  const out = h.receive(req({ subscribe: ['b'], responseNonce: 'n1' }));
  t.ok(out.generate && out.acked, 'older nonce still ACKs its response and subscribes');
  t.same(h.send([res('a', '2'), res('b', '1')])?.resources, ['b@1']);
});

t.test('delta NACK: the same content is not sent again, the next change is', async (t) => {
  const h = harness();
  h.receive(req({ subscribe: ['a'] }));
  h.send([res('a', '1')]);
  h.receive(req({ responseNonce: 'n1' }));
  h.send([res('a', 'bad')]);
  const out = h.receive(req({ responseNonce: 'n2', errorDetail: { code: 3, message: 'no' } }));
  t.ok(out.nacked && !out.generate);
  t.equal(h.send([res('a', 'bad')]), undefined);
  t.same(h.send([res('a', 'good')])?.resources, ['a@good']);
  t.equal(h.state.status(), 'STALE');
  h.receive(req({ responseNonce: 'n3' }));
  t.equal(h.state.status(), 'SYNCED');
});

t.test('the first delta request is answered even when there is nothing', async (t) => {
  const h = harness();
  h.receive(req({}));
  t.same(h.send([]), { nonce: 'n1', resources: [], removed: [] });
});
