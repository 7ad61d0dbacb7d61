import t, { type Test as Tap } from 'tap';
import { status } from '@grpc/grpc-js';
import { startXdsServer, waitFor } from '../helpers/xds-server.js';
import { TestGenerator } from '../helpers/test-generator.js';
import { identityHeader } from '../helpers/test-authenticator.js';
import { createResource } from '../../../src/xds/core/resource.js';
import type { GenerateRequest, Generator, ProxyInfo, Resource } from '../../../src/xds/core/types.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

/** Bad input gets a precise status, and the server keeps serving every other stream. */

/** Endpoints: thousands of sizeable resources, optionally held mid-generation. */
class BulkEndpoints implements Generator {
  readonly typeUrl = TypeUrl.Endpoint;
  private readonly cache = new Map<string, Resource>();
  gate: Promise<void> | undefined;
  entered: (() => void) | undefined;
  async generate(_proxy: ProxyInfo, request: GenerateRequest): Promise<Resource[]> {
    this.entered?.();
    if (this.gate) await this.gate;
    return [...(request.names ?? [])].filter((n) => n.startsWith('cla-')).map((name) => {
      let r = this.cache.get(name);
      if (!r) {
        r = createResource(this.typeUrl, name, { cluster_name: name, endpoints: [{ locality: { zone: 'z'.repeat(2000) } }] });
        this.cache.set(name, r);
      }
      return r;
    });
  }
}

const secrets = new TestGenerator(TypeUrl.Secret);
secrets.set('default', 'cert');
const bulk = new BulkEndpoints();
const server = await startXdsServer({ generators: [secrets, bulk] });
t.teardown(() => server.close());
const client = server.client();
const md = identityHeader('apps', 'web');
let n = 0;
const node = () => ({ id: `bad-${++n}` });

/** The server still serves a fresh stream. */
async function stillServing(t: Tap): Promise<void> {
  const s = client.sotw('ads', { node: node(), metadata: md });
  s.subscribe(TypeUrl.Secret, ['default']);
  const r = await s.next();
  t.same(r.resources.map((x) => x.name), ['default'], 'the server keeps serving other streams');
  s.cancel();
}

t.test('ADS request with an empty type URL: INVALID_ARGUMENT', async (t) => {
  const s = client.sotw('ads', { node: node(), metadata: md });
  s.send({ type_url: '', resource_names: ['default'] });
  const st = await s.status;
  t.equal(st.code, status.INVALID_ARGUMENT);
  t.match(st.details, /Aggregated Discovery Service request must set type_url/);
  await stillServing(t);
});

t.test('an empty type URL later on an open ADS stream ends it the same way', async (t) => {
  const s = client.sotw('ads', { node: node(), metadata: md });
  s.subscribe(TypeUrl.Secret, ['default']);
  s.ack(await s.next());
  s.send({ resource_names: ['default'] });
  t.equal((await s.status).code, status.INVALID_ARGUMENT);
});

t.test('unknown type URL: UNIMPLEMENTED naming what is served', async (t) => {
  const s = client.sotw('ads', { node: node(), metadata: md });
  s.send({ type_url: 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig', resource_names: ['x'] });
  const st = await s.status;
  t.equal(st.code, status.UNIMPLEMENTED);
  t.match(st.details, /serves no resources of type_url "type\.googleapis\.com\/envoy\.config\.core\.v3\.TypedExtensionConfig"; it serves .*ClusterLoadAssignment.*Secret/);
  const d = client.delta('ads', { node: node(), metadata: md });
  d.send({ type_url: 'garbage', resource_names_subscribe: ['x'] });
  t.equal((await d.status).code, status.UNIMPLEMENTED, 'delta too');
  await stillServing(t);
});

t.test('thousands of resource names are handled; above the cap, RESOURCE_EXHAUSTED', async (t) => {
  const names = Array.from({ length: 5000 }, (_, i) => `cla-${i}`);
  const s = client.sotw('ads', { node: node(), metadata: md });
  s.subscribe(TypeUrl.Endpoint, names);
  const r = await s.next(30000);
  t.equal(r.resources.length, 5000, '5,000 names: every resource in one response');
  t.equal(new Set(r.resources.map((x) => x.name)).size, 5000, 'no duplicates');
  s.cancel();

  const huge = Array.from({ length: 20000 }, (_, i) => `cla-${i}`);
  const s2 = client.sotw('ads', { node: node(), metadata: md });
  s2.subscribe(TypeUrl.Endpoint, huge);
  const st = await s2.status;
  t.equal(st.code, status.RESOURCE_EXHAUSTED);
  t.match(st.details, /names 20000 resources; meshd accepts at most 10000/);

  const d = client.delta('ads', { node: node(), metadata: md });
  d.subscribe(TypeUrl.Endpoint, huge);
  t.equal((await d.status).code, status.RESOURCE_EXHAUSTED, 'delta: one request over the cap');
  const d2 = client.delta('ads', { node: node(), metadata: md });
  for (let i = 0; i < 3; i += 1) d2.subscribe(TypeUrl.Endpoint, huge.slice(i * 4000, (i + 1) * 4000));
  const st2 = await d2.status;
  t.equal(st2.code, status.RESOURCE_EXHAUSTED, 'delta: a stream that grows its subscription over the cap');
  t.match(st2.details, /subscribes to 12000 resources/);
  await stillServing(t);
});

t.test('a stream that disconnects mid-response crashes nothing', async (t) => {
  // 1. Cancelled while its response is being generated.
  let entered!: () => void;
  const generating = new Promise<void>((r) => (entered = r));
  let release!: () => void;
  bulk.gate = new Promise((r) => (release = r));
  bulk.entered = entered;
  const s = client.sotw('ads', { node: node(), metadata: md });
  s.subscribe(TypeUrl.Endpoint, Array.from({ length: 3000 }, (_, i) => `cla-${i}`));
  await generating;
  s.cancel();
  await waitFor(() => server.core.connections().length === 0, 'the cancel to reach the server');
  bulk.entered = undefined;
  bulk.gate = undefined;
  release();
  // 2. Cancelled while a multi-megabyte response is on the wire.
  for (let i = 0; i < 5; i += 1) {
    const s2 = client.sotw('ads', { node: node(), metadata: md });
    s2.subscribe(TypeUrl.Endpoint, Array.from({ length: 4000 }, (_, j) => `cla-${j}`));
    await new Promise((r) => setImmediate(r));
    s2.cancel();
  }
  await stillServing(t);
  await waitFor(() => server.core.connections().length === 0, 'every cancelled stream to be forgotten');
  t.pass('no stream state left behind');
});

t.test('malformed protobuf bytes get a status', async (t) => {
  const raw = client.rawStream('ads', md);
  const st = new Promise<{ code: number; details: string }>((resolve) => raw.on('status', resolve));
  raw.on('error', () => {});
  raw.write(Buffer.from([0xff, 0xff])); // a truncated varint: not a protobuf message
  const s = await st;
  t.equal(s.code, status.INVALID_ARGUMENT);
  t.match(s.details, /not a valid envoy\.service\.discovery\.v3\.DiscoveryRequest: index out of range/);
  await stillServing(t);
});

t.test('the first request without node: INVALID_ARGUMENT', async (t) => {
  const s = client.sotw('ads', { metadata: md });
  s.send({ type_url: TypeUrl.Secret, resource_names: ['default'], node: { cluster: 'no-id' } });
  const st = await s.status;
  t.equal(st.code, status.INVALID_ARGUMENT);
  t.match(st.details, /must carry node with a non-empty id/);
});
