import t, { type Test as Tap } from 'tap';
import { status } from '@grpc/grpc-js';
import { startXdsServer } from '../helpers/xds-server.js';
import { TestGenerator, contentOf } from '../helpers/test-generator.js';
import { identityHeader } from '../helpers/test-authenticator.js';
import type { SotwStream, SotwResponse } from '../helpers/xds-client.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

/**
 * The state-of-the-world rules of xds_protocol (ACK/NACK, resource names, full-state types), one test each, over
 * real gRPC on 127.0.0.1. "Nothing was sent" is proven with a barrier: a request for
 * another type is processed after the one under test on the same stream, so if the first
 * had produced a response it would arrive before the barrier's.
 */
const secrets = new TestGenerator(TypeUrl.Secret);
const clusters = new TestGenerator(TypeUrl.Cluster);
const listeners = new TestGenerator(TypeUrl.Listener);
secrets.set('default', 'cert-1');
secrets.set('ROOTCA', 'root-1');
clusters.set('c1', 'one');
clusters.set('c2', 'two');
listeners.set('l1', 'one');

const server = await startXdsServer({ generators: [secrets, clusters, listeners] });
t.teardown(() => server.close());
const client = server.client();
const md = identityHeader('apps', 'web');

let proxies = 0;
function ads(): { stream: SotwStream; id: string } {
  const id = `sidecar-${++proxies}`;
  return { stream: client.sotw('ads', { node: { id }, metadata: md }), id };
}

let barriers = 0;
/**
 * Proves nothing is pending on the stream and that the server has processed everything
 * sent before: it subscribes CDS to one more (absent) name, which a full-state type always
 * answers, so the next response must be that CDS answer.
 */
async function barrier(t: Tap, stream: SotwStream, message: string): Promise<void> {
  barriers += 1;
  stream.subscribe(TypeUrl.Cluster, ['c1', ...Array.from({ length: barriers }, (_, i) => `barrier-${i}`)]);
  const next = await stream.next();
  t.equal(next.type_url, TypeUrl.Cluster, message);
  stream.ack(next);
}

const names = (r: SotwResponse) => r.resources.map((x) => x.name);
const contents = (r: SotwResponse) => r.resources.map((x) => `${x.name}=${contentOf(r.type_url, x.decoded)}`);

t.test('ACK does not trigger a resend', async (t) => {
  const { stream } = ads();
  stream.subscribe(TypeUrl.Secret, ['default', 'ROOTCA']);
  const first = await stream.next();
  t.same(names(first).sort(), ['ROOTCA', 'default']);
  t.ok(first.nonce && first.version_info, 'version and nonce set');
  stream.ack(first);
  await barrier(t, stream, 'the ACK produced no response');
  const before = secrets.calls.length;
  stream.ack(first);
  await barrier(t, stream, 'a repeated ACK produced no response either');
  t.equal(secrets.calls.length, before, 'an ACK does not even re-generate');
  stream.cancel();
});

t.test('NACK is not re-answered with the same version, and the next real change is sent', async (t) => {
  const { stream, id } = ads();
  stream.subscribe(TypeUrl.Secret, ['default']);
  const good = await stream.next();
  stream.ack(good);
  await barrier(t, stream, 'the ACK is processed before the push');
  secrets.set('default', 'broken', id);
  await server.core.push({ reason: 'secret', typeUrls: [TypeUrl.Secret], proxies: new Set([id]) });
  const bad = await stream.next();
  t.same(contents(bad), ['default=broken']);
  stream.nack(bad, 'Failed to load certificate chain from <inline>');
  await server.core.push({ reason: 'secret', typeUrls: [TypeUrl.Secret], proxies: new Set([id]) });
  await barrier(t, stream, 'the rejected content was not pushed again');
  stream.subscribe(TypeUrl.Secret, ['default', 'ROOTCA']);
  const more = await stream.next();
  t.same(contents(more), ['ROOTCA=root-1'], 'a subscription change is answered without the rejected version');
  stream.ack(more);
  await barrier(t, stream, 'ACK processed');
  t.equal(await server.metric('pilot_total_xds_rejects', { type: 'sds' }), 1, 'pilot_total_xds_rejects{type="sds"} counted');
  const log = server.logs.find((l) => l.msg?.includes('NACK') && l.proxy === id);
  t.ok(log, 'the NACK is logged');
  t.equal(log?.message, 'Failed to load certificate chain from <inline>');
  t.same(log?.resources, ['default']);
  t.equal(log?.type, 'sds');
  const view = server.core.connections().find((c) => c.proxyId === id)!;
  const sds = view.types.find((x) => x.type === 'sds')!;
  t.equal(sds.lastNack?.message, 'Failed to load certificate chain from <inline>', 'the debug view remembers the NACK');
  t.same(sds.lastNack?.resources, ['default']);
  t.equal(sds.versionAcked, more.version_info);
  t.equal(sds.status, 'SYNCED', 'the later response was ACKed');
  t.equal(sds.lastNack?.version, bad.version_info);

  secrets.set('default', 'fixed', id);
  await server.core.push({ reason: 'secret', typeUrls: [TypeUrl.Secret], proxies: new Set([id]) });
  const fixed = await stream.next();
  t.same(contents(fixed), ['default=fixed'], 'the next real change is sent as usual');
  t.not(fixed.version_info, bad.version_info);
  stream.ack(fixed);
  await barrier(t, stream, 'settled');
  await barrier(t, stream, 'the barrier itself ACKed');
  t.equal(server.core.connections().find((c) => c.proxyId === id)!.types.find((x) => x.type === 'sds')!.status, 'SYNCED');
  secrets.delete('default', id);
  stream.cancel();
});

t.test('stale nonce is ignored (and counted in pilot_xds_expired_nonce)', async (t) => {
  const { stream, id } = ads();
  stream.subscribe(TypeUrl.Secret, ['default']);
  const first = await stream.next();
  secrets.set('default', 'rotated', id);
  await server.core.push({ reason: 'secret', proxies: new Set([id]) });
  const second = await stream.next();
  const expiredBefore = await server.metric('pilot_xds_expired_nonce', { type: 'sds' });
  // Answers the superseded response and asks for ROOTCA: superseded, so not answered at all.
  stream.send({ type_url: TypeUrl.Secret, resource_names: ['default', 'ROOTCA'], version_info: first.version_info, response_nonce: first.nonce });
  await barrier(t, stream, 'no response to the stale request');
  t.equal(await server.metric('pilot_xds_expired_nonce', { type: 'sds' }), expiredBefore + 1, 'counted');
  stream.send({ type_url: TypeUrl.Secret, resource_names: ['default', 'ROOTCA'], version_info: second.version_info, response_nonce: second.nonce });
  const third = await stream.next();
  t.same(names(third), ['ROOTCA'], 'the same request with the latest nonce is processed');
  secrets.delete('default', id);
  stream.cancel();
});

t.test('changed subscription re-sends unchanged resources', async (t) => {
  const { stream } = ads();
  stream.subscribe(TypeUrl.Secret, ['default']);
  const r1 = await stream.next();
  t.same(names(r1), ['default']);
  stream.ack(r1);
  stream.subscribe(TypeUrl.Secret, ['default', 'ROOTCA']);
  const r2 = await stream.next();
  t.same(names(r2), ['ROOTCA'], 'the newly requested one (other types carry only what is new or changed)');
  stream.ack(r2);
  stream.subscribe(TypeUrl.Secret, ['ROOTCA']);
  await barrier(t, stream, 'dropping a name needs no response');
  stream.subscribe(TypeUrl.Secret, ['ROOTCA', 'default']);
  const r3 = await stream.next();
  t.same(names(r3), ['default'], 're-requested default is sent again although unchanged');
  t.equal(r3.resources[0].value.equals(r1.resources[0].value), true, 'same bytes as before');
  stream.cancel();
});

t.test('full-state types: a CDS subscription change answers with every cluster', async (t) => {
  const { stream } = ads();
  stream.subscribe(TypeUrl.Cluster, ['c1']);
  const r1 = await stream.next();
  t.same(names(r1), ['c1']);
  stream.ack(r1);
  stream.subscribe(TypeUrl.Cluster, ['c1', 'c2']);
  const r2 = await stream.next();
  t.same(names(r2).sort(), ['c1', 'c2'], 'LDS/CDS responses carry the full set');
  stream.cancel();
});

t.test('legacy wildcard: an empty first request subscribes to everything, until a name is sent', async (t) => {
  const { stream, id } = ads();
  stream.subscribe(TypeUrl.Listener, []);
  const r1 = await stream.next();
  t.same(names(r1), ['l1']);
  stream.ack(r1);
  await barrier(t, stream, 'ACK processed');
  listeners.set('l2', 'two', id);
  await server.core.push({ reason: 'config', typeUrls: [TypeUrl.Listener] });
  const r2 = await stream.next();
  t.same(names(r2).sort(), ['l1', 'l2'], 'a new listener reaches the wildcard subscriber, with the full set');
  stream.ack(r2);
  stream.subscribe(TypeUrl.Listener, ['l1']);
  stream.subscribe(TypeUrl.Listener, []);
  await barrier(t, stream, 'requests processed');
  const lds = server.core.connections().find((c) => c.proxyId === id)!.types.find((x) => x.type === 'lds')!;
  t.same(lds.subscribed, { wildcard: false, names: 0 }, 'after naming, an empty list means nothing, not the wildcard');
  listeners.delete('l2', id);
  stream.cancel();
});

t.test('explicit wildcard "*" (with a name beside it)', async (t) => {
  const { stream } = ads();
  stream.subscribe(TypeUrl.Listener, ['*', 'not-there']);
  const r1 = await stream.next();
  t.same(names(r1), ['l1']);
  stream.cancel();
});

t.test('a requested name that does not exist yet is pushed when it appears', async (t) => {
  const { stream, id } = ads();
  stream.subscribe(TypeUrl.Secret, ['spiffe://cluster.local/ns/apps/sa/web']);
  await barrier(t, stream, 'nothing to send yet (no empty SDS response, which Envoy would reject)');
  secrets.set('spiffe://cluster.local/ns/apps/sa/web', 'svid', id);
  await server.core.push({ reason: 'secret', proxies: new Set([id]) });
  const r = await stream.next();
  t.same(names(r), ['spiffe://cluster.local/ns/apps/sa/web']);
  stream.cancel();
});

t.test('the first request of a type is answered even when its version_info looks current', async (t) => {
  const { stream: s1 } = ads();
  s1.subscribe(TypeUrl.Secret, ['default']);
  const r1 = await s1.next();
  s1.cancel();
  // A reconnect: the last version it had and a nonce from the previous stream (or server).
  const { stream: s2 } = ads();
  s2.send({ type_url: TypeUrl.Secret, resource_names: ['default'], version_info: r1.version_info, response_nonce: r1.nonce });
  const r2 = await s2.next();
  t.same(names(r2), ['default']);
  t.equal(r2.version_info, r1.version_info, 'content-derived version: same content, same version');
  t.not(r2.nonce, r1.nonce, 'a fresh nonce');
  s2.cancel();
});

t.test('node only in the first request: later requests are attributed to the same proxy', async (t) => {
  const { stream, id } = ads();
  stream.subscribe(TypeUrl.Secret, ['default']);
  stream.ack(await stream.next());
  stream.subscribe(TypeUrl.Secret, ['default', 'ROOTCA']); // no node on this request (Envoy's set_node_on_first_message_only)
  await stream.next();
  const calls = secrets.calls.filter((c) => c.proxy === id);
  t.equal(calls.length, 2, 'both requests generated for the node id of the first request');
  stream.cancel();

  const noNode = client.sotw('ads', { metadata: md });
  noNode.send({ type_url: TypeUrl.Secret, resource_names: ['default'] });
  const s = await noNode.status;
  t.equal(s.code, status.INVALID_ARGUMENT);
  t.match(s.details, /first request .* must carry node/);
});
