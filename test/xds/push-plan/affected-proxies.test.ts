import t from 'tap';
import { affectedWorkloads, configPushRequest, affectedProxyPredicate } from '../../../src/xds/push-plan/affected-proxies.js';
import { FINGERPRINT_TYPES } from '../../../src/xds/generators/sidecar-generators.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';
import { buildProxyConfig } from '../../../src/xds/generators/proxy-config.js';
import type { MeshSnapshot } from '../../../src/config/model.js';
import { ap, docs, identity, pa, proxyFor, se, snapshotOf, we } from '../generators/fixtures.js';

/**
 * Which workloads a change affects. Three namespaces: `a` (service a-svc, workloads a-1 with
 * label tier=x and a-2), `b` (b-svc exported only to b, workload b-1), `c` (c-1, no service).
 * Every workload sees a-svc; only b sees b-svc.
 */
const BASE = [
  se('a', 'a-svc', { ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 }], selector: { app: 'a' } }),
  se('b', 'b-svc', { ports: [{ number: 90, name: 'tcp', protocol: 'TCP' }], selector: { app: 'b' }, exportTo: ['.'] }),
  we('a', 'a-1', { address: '10.0.0.1', labels: { app: 'a', tier: 'x' }, serviceAccount: 'a' }),
  we('a', 'a-2', { address: '10.0.0.2', labels: { app: 'a' }, serviceAccount: 'a' }),
  we('b', 'b-1', { address: '10.0.0.3', labels: { app: 'b' }, serviceAccount: 'b' }),
  we('c', 'c-1', { address: '10.0.0.4', labels: { app: 'c' }, serviceAccount: 'c' }),
];
const ALL = ['a/a-1', 'a/a-2', 'b/b-1', 'c/c-1'];

const rows: Array<{ name: string; before: string[]; after: string[]; mesh?: [string, string]; expect: 'all' | string[] }> = [
  { name: 'nothing changed', before: [], after: [], expect: [] },
  { name: 'mesh-wide PeerAuthentication', before: [], after: [pa('istio-system', 'default', 'STRICT')], expect: 'all' },
  { name: 'mesh settings', before: [], after: [], mesh: ['enableAutoMtls: true\n', 'enableAutoMtls: false\n'], expect: 'all' },
  { name: 'selector policy in the root namespace is ignored', before: [], after: [pa('istio-system', 'sel', 'STRICT', { selector: { app: 'a' } })], expect: [] },
  { name: 'namespace policy in c: c-1 only (no services there, none backed by it)', before: [], after: [pa('c', 'default', 'STRICT')], expect: ['c/c-1'] },
  { name: 'namespace policy in a: a\'s workloads and every client of a-svc', before: [], after: [pa('a', 'default', 'STRICT')], expect: ALL },
  { name: 'namespace policy in b: b-1, and b-svc clients are only in b', before: [], after: [pa('b', 'default', 'STRICT')], expect: ['b/b-1'] },
  { name: 'workload policy for tier=x: a-1 and clients of a-svc', before: [], after: [pa('a', 'x', 'DISABLE', { selector: { tier: 'x' } })], expect: ALL },
  { name: 'workload policy matching nothing', before: [], after: [pa('a', 'none', 'DISABLE', { selector: { tier: 'zzz' } })], expect: [] },
  { name: 'policy edited, only its mode', before: [pa('b', 'default', 'PERMISSIVE')], after: [pa('b', 'default', 'STRICT')], expect: ['b/b-1'] },
  { name: 'an unchanged namespace policy next to a changed workload policy is not re-counted', before: [pa('a', 'default', 'STRICT'), pa('b', 'w', 'STRICT', { selector: { app: 'b' } })], after: [pa('a', 'default', 'STRICT'), pa('b', 'w', 'DISABLE', { selector: { app: 'b' } })], expect: ['b/b-1'] },
  { name: 'a new service exported to b only', before: [], after: [se('b', 'new', { ports: [{ number: 70, name: 'tcp', protocol: 'TCP' }], selector: { app: 'none' }, exportTo: ['.'] })], expect: ['b/b-1'] },
  { name: 'a new workload behind a-svc: itself and a-svc clients', before: [], after: [we('a', 'a-3', { address: '10.0.0.9', labels: { app: 'a' } })], expect: [...ALL, 'a/a-3'] },
  { name: 'a new workload behind nothing: itself only', before: [], after: [we('c', 'c-2', { address: '10.0.0.10', labels: { app: 'c' } })], expect: ['c/c-2'] },
  { name: 'AuthorizationPolicy for tier=x: a-1 only, not the clients of a-svc', before: [], after: [ap('a', 'deny-x', { action: 'DENY', selector: { tier: 'x' }, rules: '- to:\n  - operation:\n      methods: ["POST"]' })], expect: ['a/a-1'] },
  { name: 'namespace-wide AuthorizationPolicy in a: a\'s workloads only', before: [], after: [ap('a', 'allow-nothing')], expect: ['a/a-1', 'a/a-2'] },
  { name: 'root-namespace AuthorizationPolicy with a selector: matching workloads in every namespace', before: [], after: [ap('istio-system', 'deny-b', { action: 'DENY', selector: { app: 'b' }, rules: '- {}' })], expect: ['b/b-1'] },
  { name: 'AuthorizationPolicy removed: the workloads it attached to', before: [ap('c', 'allow-nothing')], after: [], expect: ['c/c-1'] },
  { name: 'AuthorizationPolicy selector moved from app=b to app=c: both', before: [ap('istio-system', 'p', { selector: { app: 'b' } })], after: [ap('istio-system', 'p', { selector: { app: 'c' } })], expect: ['b/b-1', 'c/c-1'] },
  { name: 'AuthorizationPolicy in a namespace without workloads: nobody', before: [], after: [ap('zzz', 'allow-nothing')], expect: [] },
];

function snaps(before: string[], after: string[], mesh?: [string, string]): [MeshSnapshot, MeshSnapshot] {
  const prev = snapshotOf(docs(...BASE, ...before), mesh?.[0]);
  const next = snapshotOf(docs(...BASE, ...after), mesh?.[1], prev);
  return [prev, next];
}

for (const row of rows) {
  t.test(`affected: ${row.name}`, async (t) => {
    const [prev, next] = snaps(row.before, row.after, row.mesh);
    const got = affectedWorkloads(prev, next);
    if (row.expect === 'all') t.ok(got.all, 'every proxy');
    else {
      t.notOk(got.all);
      t.same([...got.workloads].sort(), [...row.expect].sort());
    }
  });
}

t.test('the scoping never misses a workload whose generated config changed', async (t) => {
  // Cross-check every row against the generated config itself.
  for (const row of rows) {
    const [prev, next] = snaps(row.before, row.after, row.mesh);
    const got = affectedWorkloads(prev, next);
    for (const w of next.workloadEntries) {
      const old = prev.workloadEntries.find((x) => x.meta.namespace === w.meta.namespace && x.meta.name === w.meta.name);
      const changed = old === undefined || JSON.stringify(buildProxyConfig(prev, old)) !== JSON.stringify(buildProxyConfig(next, w));
      const key = `${w.meta.namespace}/${w.meta.name}`;
      if (changed) t.ok(got.all || got.workloads.has(key), `${row.name}: ${key} changed and is pushed`);
    }
  }
});

t.test('push request: predicate over proxies by their workload; none when nothing changed', async (t) => {
  const [prev, next] = snaps([], [pa('b', 'default', 'STRICT')]);
  const req = configPushRequest(prev, next)!;
  t.equal(req.reason, 'config');
  const pred = req.proxies as (p: ReturnType<typeof proxyFor>) => boolean;
  t.ok(pred(proxyFor('b', 'b-1', identity('b', 'b'))));
  t.notOk(pred(proxyFor('a', 'a-1', identity('a', 'a'))));
  const [p2, n2] = snaps([], []);
  t.equal(configPushRequest(p2, n2), undefined);
  t.ok(affectedProxyPredicate({ all: true, workloads: new Set() })({ ...proxyFor('x', 'y', identity('x', 'y')), id: 'unknown', metadata: {} }));
});

t.test('push request: sidecars only when their generated config changed; gRPC proxies by the rules', async (t) => {
  // PERMISSIVE → STRICT in a: a's inbound chains change; clients keep the same clusters and
  // endpoints (tlsMode istio either way), so only a's sidecars are pushed.
  const [prev, next] = snaps([pa('a', 'default', 'PERMISSIVE')], [pa('a', 'default', 'STRICT')]);
  t.same([...affectedWorkloads(prev, next).workloads].sort(), ALL, 'rules: a and every client of a-svc');
  const pred = configPushRequest(prev, next)!.proxies as (p: ReturnType<typeof proxyFor>) => boolean;
  t.ok(pred(proxyFor('a', 'a-1', identity('a', 'a'))));
  t.ok(pred(proxyFor('a', 'a-2', identity('a', 'a'))));
  t.notOk(pred(proxyFor('b', 'b-1', identity('b', 'b'))), 'client sidecar: nothing it is served changed');
  t.ok(pred(proxyFor('b', 'b-1', identity('b', 'b'), '10.0.0.3', { GENERATOR: 'grpc' })), 'gRPC proxy: rule-based set');
  const typesOf = configPushRequest(prev, next)!.typeUrls as (p: ReturnType<typeof proxyFor>) => readonly string[];
  t.same(typesOf(proxyFor('a', 'a-1', identity('a', 'a'))), [TypeUrl.Listener], 'a sidecar gets only the type that changed: its inbound listeners');
  t.same(typesOf(proxyFor('b', 'b-1', identity('b', 'b'), '10.0.0.3', { GENERATOR: 'grpc' })), FINGERPRINT_TYPES, 'a gRPC proxy gets every type');
  t.notOk(typesOf(proxyFor('a', 'a-1', identity('a', 'a'))).includes(TypeUrl.Secret), 'never secrets');

  // PERMISSIVE → DISABLE in a: clients lose tlsMode on a's endpoints and auto mTLS on a-svc.
  const [p2, n2] = snaps([pa('a', 'default', 'PERMISSIVE')], [pa('a', 'default', 'DISABLE')]);
  const pred2 = configPushRequest(p2, n2)!.proxies as (p: ReturnType<typeof proxyFor>) => boolean;
  for (const [ns, name] of [['a', 'a-1'], ['b', 'b-1'], ['c', 'c-1']] as const) t.ok(pred2(proxyFor(ns, name, identity(ns, ns))), `${ns}/${name} pushed`);
  const types2 = configPushRequest(p2, n2)!.typeUrls as (p: ReturnType<typeof proxyFor>) => readonly string[];
  const got = types2(proxyFor('b', 'b-1', identity('b', 'b')));
  t.ok(got.includes(TypeUrl.Cluster) && got.includes(TypeUrl.Endpoint) && got.includes(TypeUrl.Listener), `clusters (auto mTLS), endpoints (tlsMode) and a's inbound chains changed: ${got.map((u) => u.split('.').pop()).join(', ')}`);
  t.same([...got], FINGERPRINT_TYPES.filter((u) => got.includes(u)), 'in the push order CDS, EDS, LDS, RDS');
});

t.test('push request: an AuthorizationPolicy change re-sends LDS to exactly the proxies it attaches to', async (t) => {
  const deny = ap('a', 'deny-post', { action: 'DENY', selector: { tier: 'x' }, rules: '- to:\n  - operation:\n      methods: ["POST"]' });
  const sidecars = [proxyFor('a', 'a-1', identity('a', 'a')), proxyFor('a', 'a-2', identity('a', 'a')), proxyFor('b', 'b-1', identity('b', 'b')), proxyFor('c', 'c-1', identity('c', 'c'))];
  for (const [what, before, after] of [['added', [], [deny]], ['removed', [deny], []], ['edited', [deny], [deny.replace('POST', 'PUT')]]] as const) {
    const [prev, next] = snaps([...before], [...after]);
    const req = configPushRequest(prev, next)!;
    t.ok(req, `${what}: a push`);
    const pred = req.proxies as (p: ReturnType<typeof proxyFor>) => boolean;
    t.same(sidecars.filter(pred).map((p) => p.metadata.WORKLOAD_NAME), ['a-1'], `${what}: only a-1's sidecar`);
    const types = req.typeUrls as (p: ReturnType<typeof proxyFor>) => readonly string[];
    t.same(types(sidecars[0]!), [TypeUrl.Listener], `${what}: LDS only`);
    t.ok(pred(proxyFor('a', 'a-1', identity('a', 'a'), '10.0.0.1', { GENERATOR: 'grpc' })), `${what}: a-1 as a gRPC server is pushed too`);
    t.notOk(pred(proxyFor('b', 'b-1', identity('b', 'b'), '10.0.0.3', { GENERATOR: 'grpc' })), `${what}: b-1 as a gRPC proxy is not`);
  }
  const same = [ap('a', 'p', { selector: { tier: 'x' } })];
  const [prev, next] = snaps(same, same);
  t.equal(configPushRequest(prev, next), undefined, 'an unchanged policy pushes nothing');
});
