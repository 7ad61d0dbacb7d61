import t from 'tap';
import { diffSnapshots, fullDiff } from '../../src/config/diff.js';
import { pa, snapshotOf, yaml } from './helpers.js';

const we = (ns: string, name: string, address: string, app = 'web'): string => yaml`
  apiVersion: networking.istio.io/v1
  kind: WorkloadEntry
  metadata: {name: ${name}, namespace: ${ns}}
  spec: {address: "${address}", labels: {app: ${app}}}
`;
const se = (ns: string, name: string, port: number): string => yaml`
  apiVersion: networking.istio.io/v1
  kind: ServiceEntry
  metadata: {name: ${name}, namespace: ${ns}}
  spec:
    hosts: [${name}.${ns}.svc.cluster.local]
    resolution: STATIC
    ports: [{number: ${port}, name: http, protocol: HTTP}]
    workloadSelector: {labels: {app: ${name}}}
`;

const base = {
  'shop.yaml': [pa('shop', 'default', 'PERMISSIVE'), we('shop', 'web-1', '10.0.0.1'), se('shop', 'web', 80)].join('---\n'),
  'pay.yaml': [pa('pay', 'default', 'STRICT'), we('pay', 'api-1', '10.0.1.1', 'api'), se('pay', 'api', 80)].join('---\n'),
};

t.test('a namespace policy change names only that namespace', async (t) => {
  const a = snapshotOf(base);
  const b = snapshotOf({ ...base, 'shop.yaml': base['shop.yaml'].replace('PERMISSIVE', 'STRICT') }, a);
  const d = diffSnapshots(a, b);
  t.same([...d.peerAuthenticationNamespaces], ['shop']);
  t.same([...d.namespaces], ['shop']);
  t.same([...d.services], []);
  t.same([...d.workloads], []);
  t.equal(d.meshChanged, false);
  t.equal(d.empty, false);
});

t.test('workload and service changes, additions and removals', async (t) => {
  const a = snapshotOf(base);
  const b = snapshotOf({
    'shop.yaml': [pa('shop', 'default', 'PERMISSIVE'), we('shop', 'web-1', '10.0.0.9'), we('shop', 'web-2', '10.0.0.2'), se('shop', 'web', 8080)].join('---\n'),
    'pay.yaml': [pa('pay', 'default', 'STRICT'), we('pay', 'api-1', '10.0.1.1', 'api')].join('---\n'),
  }, a);
  const d = diffSnapshots(a, b);
  t.same([...d.workloads].sort(), ['shop/web-1', 'shop/web-2']);
  t.same([...d.services].sort(), ['pay/api', 'shop/web']);
  t.same([...d.peerAuthenticationNamespaces], []);
  t.same([...d.namespaces].sort(), ['pay', 'shop']);
});

t.test('moving a document to another file is not a change; a message-only change is flagged', async (t) => {
  const a = snapshotOf(base);
  const b = snapshotOf({ 'all.yaml': `${base['pay.yaml']}---\n${base['shop.yaml']}` }, a);
  const d = diffSnapshots(a, b);
  t.equal(d.empty, true);
  t.equal(d.messagesChanged, false);
  const c = snapshotOf({ ...base, 'bad.yaml': pa('x', 'default', 'NOPE') }, a);
  const d2 = diffSnapshots(a, c);
  t.equal(d2.empty, true);
  t.equal(d2.messagesChanged, true);
});

t.test('root namespace and mesh changes are reported', async (t) => {
  const a = snapshotOf(base);
  const b = snapshotOf({ ...base, 'root.yaml': pa('istio-system', 'default', 'STRICT') }, a);
  const d = diffSnapshots(a, b);
  t.same([...d.peerAuthenticationNamespaces], ['istio-system']);
  const c = snapshotOf({ ...base, 'mesh.yaml': 'trustDomain: other.local\n' }, a);
  const d2 = diffSnapshots(a, c);
  t.equal(d2.meshChanged, true);
});

t.test('portLevelMtls changes are detected (Map content compared)', async (t) => {
  const sel = (port: number) => yaml`
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: w, namespace: shop}
    spec:
      selector: {matchLabels: {app: web}}
      portLevelMtls: {${port}: {mode: DISABLE}}
  `;
  const a = snapshotOf({ 'a.yaml': sel(9090) });
  t.equal(diffSnapshots(a, snapshotOf({ 'a.yaml': sel(9090) }, a)).empty, true);
  t.same([...diffSnapshots(a, snapshotOf({ 'a.yaml': sel(9091) }, a)).peerAuthenticationNamespaces], ['shop']);
});

t.test('fullDiff lists everything', async (t) => {
  const d = fullDiff(snapshotOf(base));
  t.same([...d.namespaces].sort(), ['pay', 'shop']);
  t.same([...d.workloads].sort(), ['pay/api-1', 'shop/web-1']);
  t.equal(d.meshChanged, true);
});

t.test('FileParseCache: unchanged files yield the same objects; a changed file is re-read', async (t) => {
  const { buildSnapshot, FileParseCache } = await import('../../src/config/build-snapshot.js');
  const cache = new FileParseCache();
  const files = (shopMode: string) => [
    { path: 'shop.yaml', text: base['shop.yaml'].replace('PERMISSIVE', shopMode) },
    { path: 'pay.yaml', text: base['pay.yaml'] },
  ];
  const a = buildSnapshot(files('PERMISSIVE'), undefined, cache);
  const b = buildSnapshot(files('STRICT'), a, cache);
  const pay = (s: typeof a) => s.peerAuthentications.find((p) => p.meta.namespace === 'pay');
  const shop = (s: typeof a) => s.peerAuthentications.find((p) => p.meta.namespace === 'shop');
  t.equal(pay(b), pay(a), 'same object from the unchanged file');
  t.not(shop(b), shop(a));
  t.equal(shop(b)?.mode, 'STRICT');
  t.same([...diffSnapshots(a, b).peerAuthenticationNamespaces], ['shop']);
  // The cache never hides messages: a bad file stays bad when read from the cache.
  const c = buildSnapshot([...files('NOPE')], b, cache);
  const d = buildSnapshot([...files('NOPE')], c, cache);
  t.equal(d.messages.filter((m) => m.level === 'error').length, 1);
  t.equal(shop(d)?.mode, 'STRICT');
});

t.test('an AuthorizationPolicy or DestinationRule edit is a change of its own (the new snapshot applies)', async (t) => {
  const ap = (action: string): string => `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny, namespace: pay}\nspec:\n  action: ${action}\n  rules: [{}]\n`;
  const dr = (mode: string): string => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: api, namespace: shop}\nspec:\n  host: api\n  trafficPolicy: {tls: {mode: ${mode}}}\n`;
  const a = snapshotOf({ ...base, 'authz.yaml': ap('DENY'), 'dr.yaml': dr('SIMPLE') });
  const b = snapshotOf({ ...base, 'authz.yaml': ap('ALLOW'), 'dr.yaml': dr('SIMPLE') }, a);
  const d = diffSnapshots(a, b);
  t.equal(d.empty, false, 'the same messages, yet not an empty diff');
  t.equal(d.messagesChanged, false);
  t.same([...d.authorizationPolicies], ['pay/deny']);
  t.same([...d.destinationRules], []);
  t.same([...d.namespaces], ['pay']);
  const c = snapshotOf({ ...base, 'authz.yaml': ap('ALLOW'), 'dr.yaml': dr('DISABLE') }, b);
  t.same([...diffSnapshots(b, c).destinationRules], ['shop/api']);
  t.same([...fullDiff(c).authorizationPolicies], ['pay/deny']);
});
