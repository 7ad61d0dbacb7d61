import t from 'tap';
import { createSidecarGenerators } from '../../../src/xds/generators/sidecar-generators.js';
import { dispatchByProxyKind, proxyKind } from '../../../src/xds/generators/generator-dispatch.js';
import { buildProxyConfig } from '../../../src/xds/generators/proxy-config.js';
import type { MeshSnapshot } from '../../../src/config/model.js';
import type { Generator, Resource } from '../../../src/xds/core/types.js';
import { decodeStrictAny } from '../../../src/envoy/strict-decode.js';
import { lookupType } from '../../../src/envoy/protos.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';
import { docs, identity, pa, proxyFor, se, snapshotOf, we, workload } from './fixtures.js';

const OBJECTS = [
  se('srv', 'api', { ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], selector: { app: 'api' }, addresses: ['127.0.0.40'] }),
  se('srv', 'db', { ports: [{ number: 5432, name: 'pg', protocol: 'TCP' }], selector: { app: 'db' }, addresses: ['127.0.0.41'] }),
  we('srv', 'api-1', { address: '10.0.1.1', labels: { app: 'api' }, serviceAccount: 'api' }),
  we('srv', 'db-1', { address: '10.0.1.2', labels: { app: 'db' }, serviceAccount: 'db' }),
];

function setup(...extra: string[]): { snap: MeshSnapshot; gens: Map<string, Generator>; set: (s: MeshSnapshot) => void } {
  let snap = snapshotOf(docs(...OBJECTS, ...extra));
  const gens = new Map(createSidecarGenerators(() => snap).map((g) => [g.typeUrl, g]));
  return { snap, gens, set: (s) => { snap = s; } };
}

async function gen(g: Generator, proxy: ReturnType<typeof proxyFor>, names?: string[]): Promise<Resource[]> {
  return g.generate(proxy, { names: names === undefined ? undefined : new Set(names) });
}

const API = proxyFor('srv', 'api-1', identity('srv', 'api'));
const DB = proxyFor('srv', 'db-1', identity('srv', 'db'));

t.test('one generator per type, serving exactly buildProxyConfig, as Any bodies that decode strictly', async (t) => {
  const { snap, gens } = setup();
  t.same([...gens.keys()].sort(), [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener, TypeUrl.Route].sort());
  const expected = buildProxyConfig(snap, workload(snap, 'srv', 'api-1'));
  const want: Record<string, string[]> = {
    [TypeUrl.Listener]: expected.listeners.map((l) => l.name!),
    [TypeUrl.Cluster]: expected.clusters.map((c) => c.name!),
    [TypeUrl.Route]: expected.routes.map((r) => r.name!),
    [TypeUrl.Endpoint]: expected.endpoints.map((e) => e.cluster_name!),
  };
  for (const [typeUrl, g] of gens) {
    const rs = await gen(g, API);
    t.same(rs.map((r) => r.name), want[typeUrl], `${typeUrl}: names`);
    for (const r of rs) {
      const decoded = decodeStrictAny(r.body);
      t.ok(decoded.valid, `${r.name} decodes strictly`);
      const any = lookupType('google.protobuf.Any').decode(r.body) as unknown as { type_url: string };
      t.equal(any.type_url, typeUrl);
      t.match(r.version, /^[A-Za-z0-9_-]{16}$/, 'content-hash version');
    }
  }
});

t.test('explicit names (EDS/RDS): only those, unknown names absent', async (t) => {
  const { gens } = setup();
  const eds = await gen(gens.get(TypeUrl.Endpoint)!, API, ['outbound|5432||db.srv.svc.cluster.local', 'outbound|1||nope']);
  t.same(eds.map((r) => r.name), ['outbound|5432||db.srv.svc.cluster.local']);
  const rds = await gen(gens.get(TypeUrl.Route)!, API, ['127.0.0.40:8080']);
  t.same(rds.map((r) => r.name), ['127.0.0.40:8080']);
});

t.test('identical resources are encoded once: two proxies share the same Resource objects', async (t) => {
  const { gens } = setup();
  const a = await gen(gens.get(TypeUrl.Cluster)!, API);
  const b = await gen(gens.get(TypeUrl.Cluster)!, DB);
  const shared = a.find((r) => r.name === 'outbound|5432||db.srv.svc.cluster.local')!;
  t.equal(b.find((r) => r.name === shared.name), shared, 'same object, not just equal bytes');
  const again = await gen(gens.get(TypeUrl.Cluster)!, API);
  t.equal(again, a, 'a repeated wildcard request returns the memoised list');
});

t.test('versions follow content across snapshots: a mode change re-versions the listener only', async (t) => {
  const ctx = setup();
  const before = new Map((await gen(ctx.gens.get(TypeUrl.Listener)!, API)).map((r) => [r.name, r.version]));
  const clustersBefore = new Map((await gen(ctx.gens.get(TypeUrl.Cluster)!, API)).map((r) => [r.name, r.version]));
  ctx.set(snapshotOf(docs(...OBJECTS, pa('srv', 'api-strict', 'STRICT', { selector: { app: 'api' } }))));
  const after = new Map((await gen(ctx.gens.get(TypeUrl.Listener)!, API)).map((r) => [r.name, r.version]));
  const clustersAfter = new Map((await gen(ctx.gens.get(TypeUrl.Cluster)!, API)).map((r) => [r.name, r.version]));
  t.not(after.get('10.0.1.1_8080'), before.get('10.0.1.1_8080'), 'inbound listener changed');
  t.equal(after.get('127.0.0.41_5432'), before.get('127.0.0.41_5432'), 'outbound listener unchanged');
  t.same(clustersAfter, clustersBefore, 'clusters unchanged (PERMISSIVE → STRICT keeps tlsMode istio)');
});

t.test('a proxy whose WorkloadEntry is gone gets nothing; gRPC proxies are left to their own family', async (t) => {
  const { gens } = setup();
  t.same(await gen(gens.get(TypeUrl.Listener)!, proxyFor('srv', 'ghost', identity('srv', 'api'))), []);
  const grpc = proxyFor('srv', 'api-1', identity('srv', 'api'), '10.0.1.1', { GENERATOR: 'grpc' });
  t.equal(proxyKind(grpc), 'grpc');
  t.equal(proxyKind(API), 'sidecar');
  const dispatched = dispatchByProxyKind({ sidecar: [...gens.values()] });
  const lds = dispatched.find((g) => g.typeUrl === TypeUrl.Listener)!;
  t.same(await lds.generate(grpc, { names: undefined }), [], 'no gRPC family registered: nothing for gRPC proxies');
  t.ok((await lds.generate(API, { names: undefined })).length > 0, 'sidecars still served');
  const fake: Generator = { typeUrl: TypeUrl.Listener, generate: () => [{ name: 'grpc-listener', version: 'v', body: new Uint8Array() }] };
  const both = dispatchByProxyKind({ sidecar: [...gens.values()], grpc: [fake] }).find((g) => g.typeUrl === TypeUrl.Listener)!;
  t.same((await both.generate(grpc, { names: undefined })).map((r) => r.name), ['grpc-listener']);
});
