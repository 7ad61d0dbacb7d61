import t, { type Test as Tap } from 'tap';
import { startXdsServer } from '../helpers/xds-server.js';
import { TestGenerator, contentOf } from '../helpers/test-generator.js';
import { identityHeader } from '../helpers/test-authenticator.js';
import type { DeltaResponse, DeltaStream } from '../helpers/xds-client.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

/** The incremental protocol ("Incremental xDS") over real gRPC, ADS and per-type. */
const secrets = new TestGenerator(TypeUrl.Secret);
const clusters = new TestGenerator(TypeUrl.Cluster);
const endpoints = new TestGenerator(TypeUrl.Endpoint);
endpoints.set('c1', 'zone-a');
secrets.set('default', 'cert-1');
secrets.set('ROOTCA', 'root-1');
clusters.set('c1', 'one');
clusters.set('c2', 'two');

const server = await startXdsServer({ generators: [secrets, clusters, endpoints] });
t.teardown(() => server.close());
const client = server.client();
const md = identityHeader('apps', 'web');
let proxies = 0;
function open(service: 'ads' | 'sds' = 'ads'): { stream: DeltaStream; id: string } {
  const id = `delta-${++proxies}`;
  return { stream: client.delta(service, { node: { id }, metadata: md }), id };
}

let barriers = 0;
/** Subscribing a new absent CDS name is always answered (removed_resources), so it proves the stream is idle. */
async function barrier(t: Tap, stream: DeltaStream, message: string): Promise<void> {
  const name = `barrier-${++barriers}`;
  stream.subscribe(TypeUrl.Cluster, [name]);
  const r = await stream.next();
  t.same({ type: r.type_url, removed: r.removed_resources }, { type: TypeUrl.Cluster, removed: [name] }, message);
  stream.ack(r);
}

const got = (r: DeltaResponse) => r.resources.map((x) => `${x.name}=${contentOf(r.type_url, x.resource.decoded)}`).sort();

t.test('delta subscribe and unsubscribe', async (t) => {
  const { stream, id } = open();
  stream.subscribe(TypeUrl.Secret, ['default']);
  const r1 = await stream.next();
  t.same(got(r1), ['default=cert-1']);
  t.ok(r1.nonce && r1.resources[0].version, 'per-resource version and a nonce');
  stream.ack(r1);
  stream.subscribe(TypeUrl.Secret, ['ROOTCA']);
  const r2 = await stream.next();
  t.same(got(r2), ['ROOTCA=root-1'], 'only the newly subscribed resource');
  stream.ack(r2);
  stream.unsubscribe(TypeUrl.Secret, ['default']);
  await barrier(t, stream, 'an unsubscribe gets no response');
  secrets.set('default', 'cert-2', id);
  await server.core.push({ reason: 'secret', proxies: new Set([id]) });
  await barrier(t, stream, 'changes to the unsubscribed resource are not sent');
  secrets.set('ROOTCA', 'root-2', id);
  await server.core.push({ reason: 'secret', proxies: new Set([id]) });
  const r3 = await stream.next();
  t.same(got(r3), ['ROOTCA=root-2'], 'the still-subscribed one is pushed');
  secrets.delete('default', id);
  secrets.delete('ROOTCA', id);
  stream.cancel();
});

t.test('removed_resources for subscribed names that do not exist, and for deletions', async (t) => {
  const { stream, id } = open();
  stream.subscribe(TypeUrl.Secret, ['default', 'spiffe://cluster.local/ns/other/sa/x']);
  const r1 = await stream.next();
  t.same(got(r1), ['default=cert-1']);
  t.same(r1.removed_resources, ['spiffe://cluster.local/ns/other/sa/x'], 'the client learns at once that it does not exist');
  stream.ack(r1);
  await barrier(t, stream, 'ACK processed');
  secrets.set('default', 'mine', id);
  await server.core.push({ reason: 'secret', proxies: new Set([id]) });
  const r2 = await stream.next();
  t.same(r2.removed_resources, [], 'absence is not reported again on every push');
  stream.ack(r2);
  await barrier(t, stream, 'ACK processed');
  secrets.delete('default', id);
  clusters.set('c1', 'one'); // unchanged
  await server.core.push({ reason: 'secret', proxies: new Set([id]) });
  const r3 = await stream.next();
  t.same(got(r3), ['default=cert-1'], 'back to the shared one');
  stream.cancel();
});

t.test('initial_resource_versions: a reconnecting client is not sent what it already has', async (t) => {
  const { stream: first } = open();
  first.subscribe(TypeUrl.Secret, ['default', 'ROOTCA']);
  const r1 = await first.next();
  const versions = Object.fromEntries(r1.resources.map((r) => [r.name, r.version]));
  first.cancel();
  const { stream } = open();
  stream.subscribe(TypeUrl.Secret, ['default', 'ROOTCA'], { default: versions.default, ROOTCA: 'an-old-version' });
  const r2 = await stream.next();
  t.same(got(r2), ['ROOTCA=root-1'], 'default is current on the client; ROOTCA is not');
  stream.cancel();
});

t.test('wildcard plus explicit names in delta; unsubscribing "*"', async (t) => {
  const { stream } = open();
  stream.subscribe(TypeUrl.Cluster, []);
  const r1 = await stream.next();
  t.same(got(r1), ['c1=one', 'c2=two'], 'legacy wildcard: the first request with no names gets everything');
  stream.ack(r1);
  stream.subscribe(TypeUrl.Cluster, ['c1']);
  const r2 = await stream.next();
  t.same(got(r2), ['c1=one'], 'an explicit subscribe is sent even though the wildcard already delivered it');
  stream.ack(r2);
  stream.unsubscribe(TypeUrl.Cluster, ['c1']);
  const r3 = await stream.next();
  t.same(got(r3), ['c1=one'], 'xds_protocol incremental corner case: still covered by "*", so it comes back in resources');
  stream.ack(r3);
  stream.unsubscribe(TypeUrl.Cluster, ['*']);
  stream.subscribe(TypeUrl.Secret, ['ROOTCA']);
  const r4 = await stream.next();
  t.equal(r4.type_url, TypeUrl.Secret, 'unsubscribing "*" needed no response');
  stream.cancel();
});

t.test('delta NACK: the same content is not re-sent; subscription changes are honoured whatever the nonce', async (t) => {
  const { stream, id } = open('sds');
  stream.subscribe(TypeUrl.Secret, ['default']);
  const r1 = await stream.next();
  stream.ack(r1);
  secrets.set('default', 'broken', id);
  await server.core.push({ reason: 'secret', proxies: new Set([id]) });
  const r2 = await stream.next();
  stream.nack(r2, 'bad certificate');
  stream.subscribe(TypeUrl.Secret, ['ROOTCA']); // no nonce: a spontaneous subscription change
  const r3 = await stream.next();
  t.same(got(r3), ['ROOTCA=root-1'], 'the subscription change is answered; the NACKed default is not re-sent with it');
  await server.core.push({ reason: 'secret', proxies: new Set([id]) });
  stream.send({ type_url: TypeUrl.Secret, resource_names_subscribe: ['ghost'], response_nonce: r1.nonce });
  const r4 = await stream.next();
  t.same(r4.removed_resources, ['ghost'], 'a request carrying an old nonce still changes the subscription');
  t.same(got(r4), [], 'and still no rejected content');
  t.equal(await server.metric('pilot_total_xds_rejects', { type: 'sds' }), 1);
  secrets.set('default', 'fixed', id);
  await server.core.push({ reason: 'secret', proxies: new Set([id]) });
  const r5 = await stream.next();
  t.same(got(r5), ['default=fixed'], 'the next real change is sent');
  secrets.delete('default', id);
  stream.cancel();
});

t.test('delta: a changed cluster is followed by its unchanged endpoints (xds_protocol: warming)', async (t) => {
  const { stream, id } = open();
  stream.subscribe(TypeUrl.Cluster, ['c1']);
  stream.ack(await stream.next());
  stream.subscribe(TypeUrl.Endpoint, ['c1']);
  const cla = await stream.next();
  stream.ack(cla);
  await barrier(t, stream, 'ACKs processed');
  clusters.set('c1', 'changed', id);
  await server.core.push({ reason: 'config', typeUrls: [TypeUrl.Cluster] });
  t.same(got(await stream.next()), ['c1=changed']);
  const eds = await stream.next();
  t.equal(eds.type_url, TypeUrl.Endpoint);
  t.equal(eds.resources[0].version, cla.resources[0].version, 'same version, sent again');
  clusters.delete('c1', id);
  stream.cancel();
});
