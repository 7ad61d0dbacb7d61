import t, { type Test as Tap } from 'tap';
import { status } from '@grpc/grpc-js';
import { startXdsServer, waitFor } from '../helpers/xds-server.js';
import { TestGenerator, contentOf } from '../helpers/test-generator.js';
import { identityHeader } from '../helpers/test-authenticator.js';
import type { SotwStream } from '../helpers/xds-client.js';
import { lookupType, encodeMessage } from '../../../src/envoy/protos.js';
import { GeneratorError, type GenerateRequest, type Generator, type ProxyInfo, type Resource } from '../../../src/xds/core/types.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

/** Pushes: who gets them, in which order, with which bytes; generator failures; the debug view and metrics. */

/** A generator whose next calls can be held, to observe coalescing. */
class GatedGenerator implements Generator {
  readonly typeUrl = TypeUrl.Route;
  calls = 0;
  content = 'r1';
  private gate: Promise<void> | undefined;
  private release: (() => void) | undefined;
  entered: (() => void) | undefined;
  hold(): Promise<void> {
    this.gate = new Promise((r) => (this.release = r));
    return new Promise((r) => (this.entered = r));
  }
  open(): void { this.release?.(); this.gate = undefined; }
  async generate(_proxy: ProxyInfo, request: GenerateRequest): Promise<Resource[]> {
    this.calls += 1;
    const content = this.content;
    this.entered?.(); this.entered = undefined;
    if (this.gate) await this.gate;
    return [...(request.names ?? [])].map((name) => routes.set(name, content));
  }
}

const secrets = new TestGenerator(TypeUrl.Secret);
const clusters = new TestGenerator(TypeUrl.Cluster);
const endpoints = new TestGenerator(TypeUrl.Endpoint);
const listeners = new TestGenerator(TypeUrl.Listener);
const routes = new TestGenerator(TypeUrl.Route);
const gated = new GatedGenerator();
secrets.set('default', 'cert');
clusters.set('c1', 'one');
endpoints.set('c1', 'zone-a');
listeners.set('l1', 'one');

const server = await startXdsServer({ generators: [secrets, clusters, endpoints, listeners, gated] });
t.teardown(() => server.close());
const client = server.client();
let proxies = 0;
const ads = (ns = 'apps') => {
  const id = `push-${++proxies}`;
  return { id, stream: client.sotw('ads', { node: { id }, metadata: identityHeader(ns, 'web') }) };
};
let barriers = 0;
async function barrier(t: Tap, stream: SotwStream, message: string): Promise<void> {
  barriers += 1;
  stream.subscribe(TypeUrl.Cluster, ['c1', `barrier-${barriers}`]);
  const next = await stream.next();
  t.equal(next.type_url, TypeUrl.Cluster, message);
  stream.ack(next);
}
async function subscribed(stream: SotwStream, typeUrl: string, names: string[]) {
  stream.subscribe(typeUrl, names);
  const r = await stream.next();
  stream.ack(r);
  return r;
}

t.test('resources are pushed on core.push only to the affected proxies and types', async (t) => {
  const a = ads(); const b = ads(); const c = ads('other');
  for (const p of [a, b, c]) await subscribed(p.stream, TypeUrl.Secret, ['default']);
  for (const p of [a, b, c]) await barrier(t, p.stream, 'ACKs processed');
  secrets.set('default', 'rotated-a', a.id);
  secrets.set('default', 'rotated-b', b.id);
  const callsB = secrets.callsFor(b.id);
  await server.core.push({ reason: 'secret', typeUrls: [TypeUrl.Secret], proxies: new Set([a.id]) });
  const ra = await a.stream.next();
  t.equal(contentOf(ra.type_url, ra.resources[0].decoded), 'rotated-a', 'the named proxy gets its change');
  t.equal(secrets.callsFor(b.id), callsB, 'the other proxy is not even re-generated');
  await barrier(t, b.stream, 'and gets nothing');
  await server.core.push({ reason: 'secret', proxies: (p) => p.identity.namespace === 'other' });
  await barrier(t, c.stream, 'selected by predicate, but nothing changed for it: nothing sent');
  const listenerCalls = listeners.calls.length;
  await server.core.push({ reason: 'config', typeUrls: [TypeUrl.Listener] });
  t.equal(listeners.calls.length, listenerCalls, 'no stream subscribes to listeners: nothing generated');
  t.ok(await server.metric('pilot_push_triggers', { type: 'secret' }) >= 2, 'pilot_push_triggers{type="secret"}');
  for (const p of [a, b, c]) p.stream.cancel();
  secrets.delete('default', a.id); secrets.delete('default', b.id);
});

t.test('a push can pick its types per proxy (a config change re-sends only what changed for each)', async (t) => {
  const a = ads(); const b = ads();
  for (const p of [a, b]) await barrier(t, p.stream, 'subscribed to clusters');
  clusters.set('c1', 'two-a', a.id);
  clusters.set('c1', 'two-b', b.id);
  const [callsA, callsB] = [clusters.callsFor(a.id), clusters.callsFor(b.id)];
  const listenersOnly = [TypeUrl.Listener];
  const clustersOnly = [TypeUrl.Cluster];
  await server.core.push({ reason: 'config', typeUrls: (p) => (p.id === a.id ? listenersOnly : clustersOnly) });
  const rb = await b.stream.next();
  const c1 = rb.resources.find((r: { name: string }) => r.name === 'c1');
  t.equal(c1 && contentOf(rb.type_url, c1.decoded), 'two-b', 'b: its cluster type was picked');
  b.stream.ack(rb);
  t.equal(clusters.callsFor(a.id), callsA, 'a: clusters not regenerated (only listeners picked, and a holds none)');
  t.ok(clusters.callsFor(b.id) > callsB, 'b: clusters regenerated');
  for (const p of [a, b]) p.stream.cancel();
  clusters.delete('c1', a.id); clusters.delete('c1', b.id);
});

t.test('flow control: a proxy that stops reading gets its pushes merged, then only the newest state', async (t) => {
  const { id, stream } = ads();
  const big = (v: number) => `v${v}:${'x'.repeat(200_000)}`; // each response is larger than an HTTP/2 window
  secrets.set('big', big(0), id);
  const first = await subscribed(stream, TypeUrl.Secret, ['big']);
  t.equal(contentOf(first.type_url, first.resources[0].decoded).split(':')[0], 'v0');
  await barrier(t, stream, 'ACK processed');
  const deferredBefore = await server.metric('meshd_xds_pushes_deferred_total');
  stream.pause();
  const PUSHES = 60;
  for (let v = 1; v <= PUSHES; v++) {
    secrets.set('big', big(v), id);
    await server.core.push({ reason: 'secret', typeUrls: [TypeUrl.Secret], proxies: new Set([id]) });
  }
  t.ok(await server.metric('meshd_xds_pushes_deferred_total') > deferredBefore, 'pushes were held back while the proxy did not read');
  stream.resume();
  const seen: string[] = [];
  for (;;) {
    const r = await stream.next(10_000);
    if (r.type_url !== TypeUrl.Secret) continue;
    seen.push(contentOf(r.type_url, r.resources[0].decoded).split(':')[0]!);
    stream.ack(r);
    if (seen.at(-1) === `v${PUSHES}`) break;
  }
  t.ok(seen.length < PUSHES, `${seen.length} responses for ${PUSHES} pushes: the held ones were merged`);
  t.same(seen, [...seen].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))), 'in order, never an older state after a newer one');
  await barrier(t, stream, 'and the stream is healthy afterwards');
  stream.cancel();
  secrets.delete('big', id);
});

t.test('the same resource bytes are shared by every stream (never re-encoded)', async (t) => {
  // A valid Any written with its fields in reverse order: any re-encoding would reorder them.
  const payload = encodeMessage(TypeUrl.Secret, { name: 'shared', generic_secret: { secret: { inline_string: 'same-for-all' } } });
  const canonical = lookupType('google.protobuf.Any').encode({ type_url: TypeUrl.Secret, value: payload }).finish();
  const reversed = Buffer.concat([Buffer.from([0x12, payload.length]), payload, Buffer.from([0x0a, TypeUrl.Secret.length]), Buffer.from(TypeUrl.Secret)]);
  t.notSame(Buffer.from(canonical), reversed, 'the test bytes are not the canonical encoding');
  const resource = secrets.setRaw('shared', reversed);
  const a = ads(); const b = ads();
  const ra = await subscribed(a.stream, TypeUrl.Secret, ['shared']);
  const rb = await subscribed(b.stream, TypeUrl.Secret, ['shared']);
  for (const r of [ra, rb]) {
    t.ok(r.raw.includes(reversed), 'the response embeds the resource bytes exactly as generated');
    t.equal(r.resources[0].name, 'shared');
  }
  t.equal(secrets.generate({ id: a.id } as ProxyInfo, { names: new Set(['shared']) })[0], resource, 'one Resource object serves both');
  a.stream.cancel(); b.stream.cancel();
});

t.test('ADS push order: CDS, EDS, secrets, LDS, RDS', async (t) => {
  const p = ads();
  // Subscribe in another order than the push order (clusters before endpoints, as Envoy does).
  await subscribed(p.stream, TypeUrl.Route, ['r-order']);
  await subscribed(p.stream, TypeUrl.Listener, []);
  await subscribed(p.stream, TypeUrl.Secret, ['default']);
  await subscribed(p.stream, TypeUrl.Cluster, ['c1']);
  await subscribed(p.stream, TypeUrl.Endpoint, ['c1']);
  await barrier(t, p.stream, 'ACKs processed');
  gated.content = 'r2';
  for (const g of [secrets, clusters, endpoints, listeners]) {
    const name = g === endpoints || g === clusters ? 'c1' : g === listeners ? 'l1' : 'default';
    g.set(name, `changed-for-${p.id}`, p.id);
  }
  await server.core.push({ reason: 'config' });
  const order: string[] = [];
  for (let i = 0; i < 5; i += 1) order.push((await p.stream.next()).type_url.split('.').pop()!);
  t.same(order, ['Cluster', 'ClusterLoadAssignment', 'Secret', 'Listener', 'RouteConfiguration']);
  for (const g of [secrets, clusters, endpoints, listeners]) for (const n of ['c1', 'l1', 'default']) g.delete(n, p.id);
  p.stream.cancel();
});

t.test('a changed cluster is followed by its endpoints even when they did not change (xds_protocol: warming)', async (t) => {
  const p = ads();
  await subscribed(p.stream, TypeUrl.Cluster, ['c1']);
  const cla = await subscribed(p.stream, TypeUrl.Endpoint, ['c1']);
  await barrier(t, p.stream, 'ACKs processed');
  clusters.set('c1', 'new-cluster-settings', p.id);
  await server.core.push({ reason: 'config', typeUrls: [TypeUrl.Cluster] });
  const cds = await p.stream.next();
  t.equal(cds.type_url, TypeUrl.Cluster);
  const eds = await p.stream.next();
  t.equal(eds.type_url, TypeUrl.Endpoint, 'then EDS');
  t.ok(eds.resources[0].value.equals(cla.resources[0].value), 'the unchanged ClusterLoadAssignment, re-sent');
  clusters.delete('c1', p.id);
  p.stream.cancel();
});

t.test('pushes queued for a proxy while it is busy are coalesced', async (t) => {
  const p = ads();
  gated.content = 'c1';
  await subscribed(p.stream, TypeUrl.Route, ['r-coalesce']);
  await barrier(t, p.stream, 'ACK processed');
  const before = gated.calls;
  const entered = gated.hold();
  gated.content = 'c2';
  const first = server.core.push({ reason: 'config', typeUrls: [TypeUrl.Route] });
  await entered; // the first push is generating now
  gated.content = 'c3';
  const more = [1, 2, 3].map(() => server.core.push({ reason: 'config', typeUrls: [TypeUrl.Route] }));
  gated.open();
  await Promise.all([first, ...more]);
  t.equal(gated.calls - before, 2, 'four pushes, two generations: the three queued ones merged');
  const r1 = await p.stream.next();
  const r2 = await p.stream.next();
  t.same([r1, r2].map((r) => contentOf(r.type_url, r.resources[0].decoded)), ['c2', 'c3']);
  p.stream.cancel();
});

t.test('a GeneratorError ends the stream with its status; other errors with INTERNAL; others keep being served', async (t) => {
  const healthy = ads();
  await subscribed(healthy.stream, TypeUrl.Secret, ['default']);
  const denied = ads();
  const refusing = new GeneratorError(status.PERMISSION_DENIED, 'spiffe://cluster.local/ns/apps/sa/push is not entitled to secret "spiffe://cluster.local/ns/kube-system/sa/admin"');
  listeners.failWith = refusing;
  denied.stream.subscribe(TypeUrl.Listener, []);
  const s1 = await denied.stream.status;
  t.equal(s1.code, status.PERMISSION_DENIED);
  t.equal(s1.details, refusing.message, 'the message names the resource');
  const internalBefore = await server.metric('pilot_total_xds_internal_errors');
  listeners.failWith = new TypeError('Cannot read properties of undefined (reading \'ports\')');
  const broken = ads();
  broken.stream.subscribe(TypeUrl.Listener, []);
  const s2 = await broken.stream.status;
  t.equal(s2.code, status.INTERNAL);
  t.match(s2.details, /Listener for push-\d+: Cannot read properties of undefined/);
  t.equal(await server.metric('pilot_total_xds_internal_errors'), internalBefore + 1);
  t.equal(await server.metric('meshd_handler_errors_total', { server: 'grpc', handler: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources' }), 1,
    'counted as an unexpected error of the ADS handler');
  t.ok(server.logs.some((l) => l.level === 50 && l.msg === 'unexpected error in a request handler; answered as an internal error' && l.error.type === 'TypeError'),
    'logged as an error');
  listeners.failWith = undefined;
  secrets.set('default', 'after-failures', healthy.id);
  await server.core.push({ reason: 'secret', proxies: new Set([healthy.id]) });
  const r = await healthy.stream.next();
  t.equal(contentOf(r.type_url, r.resources[0].decoded), 'after-failures', 'the healthy stream is still served');
  // A refusal during a push ends only that stream.
  secrets.failWith = new GeneratorError(status.PERMISSION_DENIED, 'no longer entitled to "default"');
  await server.core.push({ reason: 'secret', proxies: new Set([healthy.id]) });
  t.equal((await healthy.stream.status).code, status.PERMISSION_DENIED);
  secrets.failWith = undefined;
  secrets.delete('default', healthy.id);
});

t.test('connections() view and pilot_* metrics', async (t) => {
  const p = ads();
  const connectedBefore = await server.metric('pilot_xds', { version: 'meshd' });
  await subscribed(p.stream, TypeUrl.Secret, ['default']);
  p.stream.subscribe(TypeUrl.Endpoint, ['does-not-exist']);
  await barrier(t, p.stream, 'requests processed');
  t.equal(await server.metric('pilot_xds', { version: 'meshd' }), connectedBefore + 1, 'pilot_xds counts the connected stream');
  secrets.set('default', 'v2', p.id);
  await server.core.push({ reason: 'secret', proxies: new Set([p.id]) });
  const pushed = await p.stream.next();
  let view = server.core.connections().find((c) => c.proxyId === p.id)!;
  t.match(view, { spiffeId: 'spiffe://cluster.local/ns/apps/sa/web', service: 'ads', mode: 'sotw', userAgent: 'meshd-test-client/1.0' });
  const byType = Object.fromEntries(view.types.map((x) => [x.type, x]));
  t.equal(byType.sds.status, 'STALE', 'sent, not yet ACKed');
  t.equal(byType.sds.versionSent, pushed.version_info);
  t.equal(byType.eds.status, 'NOT SENT');
  const convergenceBefore = await server.metric('pilot_proxy_convergence_time');
  p.stream.ack(pushed);
  await barrier(t, p.stream, 'ACK processed');
  view = server.core.connections().find((c) => c.proxyId === p.id)!;
  t.equal(view.types.find((x) => x.type === 'sds')!.status, 'SYNCED');
  t.equal(view.types.find((x) => x.type === 'sds')!.versionAcked, pushed.version_info);
  t.type(view.lastAckLatencyMs, 'number');
  t.equal(await server.metric('pilot_proxy_convergence_time'), convergenceBefore + 1, 'convergence observed for the pushed response');
  t.ok(await server.metric('pilot_xds_pushes', { type: 'sds' }) > 0);
  t.ok(await server.metric('pilot_xds_push_time', { type: 'sds' }) > 0);
  const text = await server.registry.metrics();
  t.match(text, /pilot_xds_push_time_bucket\{le="0.01",type="sds"\}/, 'Istio buckets');
  p.stream.cancel();
  secrets.delete('default', p.id);
  await waitFor(() => !server.core.connections().some((c) => c.proxyId === p.id), 'the cancel to reach the server');
  t.pass('a cancelled stream leaves the view');
  t.equal(await server.metric('pilot_xds', { version: 'meshd' }), connectedBefore, 'and pilot_xds');
});
