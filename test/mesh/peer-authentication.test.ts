import t from 'tap';
import type { MtlsMode, PeerAuthentication } from '../../src/config/model.js';
import { modeForPort, resolvePeerAuthentication, type EffectiveMode } from '../../src/mesh/peer-authentication.js';

const ROOT = 'istio-system';

interface PaSpec {
  ns: string;
  name: string;
  mode?: MtlsMode;
  selector?: Record<string, string>;
  ports?: Record<number, MtlsMode>;
  created?: string;
}

function pa(s: PaSpec): PeerAuthentication {
  return {
    kind: 'PeerAuthentication',
    meta: {
      name: s.name,
      namespace: s.ns,
      ...(s.created !== undefined ? { creationTimestamp: s.created } : {}),
      labels: {},
      annotations: {},
      source: { file: 'test.yaml', line: 1 },
    },
    ...(s.selector !== undefined ? { selector: s.selector } : {}),
    mode: s.mode ?? 'UNSET',
    portLevelMtls: new Map(Object.entries(s.ports ?? {}).map(([p, m]) => [Number(p), m])),
  };
}

interface Row {
  name: string;
  policies: PaSpec[];
  workload?: { namespace: string; labels: Record<string, string> };
  root?: string;
  /** Expected mode and decider per port; `*` is the workload-level result. */
  expect: Record<string, [EffectiveMode, string | undefined]>;
  /** Substrings every expected warning contains, in order. */
  warnings?: string[];
}

const APP = { namespace: 'shop', labels: { app: 'cart', version: 'v1' } };
const mesh = (mode: MtlsMode, extra: Partial<PaSpec> = {}): PaSpec => ({ ns: ROOT, name: 'default', mode, ...extra });
const nsWide = (mode: MtlsMode, extra: Partial<PaSpec> = {}): PaSpec => ({ ns: 'shop', name: 'default', mode, ...extra });
const wl = (mode: MtlsMode, extra: Partial<PaSpec> = {}): PaSpec => ({ ns: 'shop', name: 'cart', mode, selector: { app: 'cart' }, ...extra });

const M = 'PeerAuthentication/istio-system/default';
const N = 'PeerAuthentication/shop/default';
const W = 'PeerAuthentication/shop/cart';

const rows: Row[] = [
  { name: 'no policy at all is PERMISSIVE with no decider', policies: [], expect: { '*': ['PERMISSIVE', undefined], 8080: ['PERMISSIVE', undefined] } },
  { name: 'mesh STRICT applies to every namespace', policies: [mesh('STRICT')], expect: { '*': ['STRICT', M], 9090: ['STRICT', M] } },
  { name: 'mesh DISABLE', policies: [mesh('DISABLE')], expect: { '*': ['DISABLE', M] } },
  { name: 'mesh UNSET means PERMISSIVE, not decided by it', policies: [mesh('UNSET')], expect: { '*': ['PERMISSIVE', undefined] } },
  { name: 'mesh with empty matchLabels is mesh-level', policies: [mesh('STRICT', { selector: {} })], expect: { '*': ['STRICT', M] } },
  { name: 'namespace overrides mesh', policies: [mesh('STRICT'), nsWide('PERMISSIVE')], expect: { '*': ['PERMISSIVE', N] } },
  { name: 'namespace UNSET inherits mesh', policies: [mesh('STRICT'), nsWide('UNSET')], expect: { '*': ['STRICT', M] } },
  { name: 'namespace with empty matchLabels is namespace-level', policies: [mesh('PERMISSIVE'), nsWide('STRICT', { selector: {} })], expect: { '*': ['STRICT', N] } },
  { name: 'another namespace\'s policy does not apply', policies: [{ ns: 'payments', name: 'default', mode: 'STRICT' }], expect: { '*': ['PERMISSIVE', undefined] } },
  { name: 'workload overrides namespace and mesh', policies: [mesh('STRICT'), nsWide('STRICT'), wl('DISABLE')], expect: { '*': ['DISABLE', W] } },
  { name: 'workload UNSET inherits namespace', policies: [nsWide('STRICT'), wl('UNSET')], expect: { '*': ['STRICT', N] } },
  { name: 'workload UNSET and namespace UNSET inherit mesh', policies: [mesh('DISABLE'), nsWide('UNSET'), wl('UNSET')], expect: { '*': ['DISABLE', M] } },
  { name: 'all UNSET is PERMISSIVE', policies: [mesh('UNSET'), nsWide('UNSET'), wl('UNSET')], expect: { '*': ['PERMISSIVE', undefined] } },
  { name: 'selector not matching the workload labels is not applied', policies: [nsWide('STRICT'), wl('DISABLE', { selector: { app: 'other' } })], expect: { '*': ['STRICT', N] } },
  { name: 'selector must match every label (subset of workload labels)', policies: [wl('DISABLE', { selector: { app: 'cart', version: 'v2' } })], expect: { '*': ['PERMISSIVE', undefined] } },
  { name: 'multi-label selector that is a subset matches', policies: [wl('STRICT', { selector: { app: 'cart', version: 'v1' } })], expect: { '*': ['STRICT', W] } },
  { name: 'selector in another namespace does not apply even if labels match', policies: [{ ns: 'payments', name: 'cart', mode: 'STRICT', selector: { app: 'cart' } }], expect: { '*': ['PERMISSIVE', undefined] } },
  {
    name: 'selector policy in the root namespace is ignored with a warning',
    policies: [mesh('PERMISSIVE'), { ns: ROOT, name: 'cart', mode: 'STRICT', selector: { app: 'cart' }, ports: { 8080: 'DISABLE' } }],
    expect: { '*': ['PERMISSIVE', M], 8080: ['PERMISSIVE', M] },
    warnings: ['PeerAuthentication/istio-system/cart has a workload selector in the root namespace'],
  },
  { name: 'custom root namespace: mesh policy lives there', root: 'mesh-root', policies: [{ ns: 'mesh-root', name: 'm', mode: 'STRICT' }, mesh('DISABLE')], expect: { '*': ['STRICT', 'PeerAuthentication/mesh-root/m'] } },
  { name: 'portLevelMtls overrides only its port', policies: [nsWide('STRICT'), wl('UNSET', { ports: { 15014: 'DISABLE' } })], expect: { '*': ['STRICT', N], 15014: ['DISABLE', W], 8080: ['STRICT', N] } },
  { name: 'port UNSET takes the workload resolved mode (from the workload policy)', policies: [nsWide('PERMISSIVE'), wl('STRICT', { ports: { 8080: 'UNSET', 9000: 'DISABLE' } })], expect: { '*': ['STRICT', W], 8080: ['STRICT', W], 9000: ['DISABLE', W] } },
  { name: 'port UNSET takes the inherited mode when the workload mode is UNSET', policies: [mesh('STRICT'), wl('UNSET', { ports: { 8080: 'UNSET' } })], expect: { '*': ['STRICT', M], 8080: ['STRICT', M] } },
  { name: 'port-level STRICT under a PERMISSIVE workload', policies: [wl('PERMISSIVE', { ports: { 8443: 'STRICT' } })], expect: { '*': ['PERMISSIVE', W], 8443: ['STRICT', W], 80: ['PERMISSIVE', W] } },
  {
    name: 'portLevelMtls on a namespace-wide policy is ignored (only workload-level carries ports)',
    policies: [nsWide('STRICT', { ports: { 8080: 'DISABLE' } })],
    expect: { '*': ['STRICT', N], 8080: ['STRICT', N] },
  },
  {
    name: 'two workload policies: the oldest wins, ports only from the winner (no merging)',
    policies: [
      wl('DISABLE', { name: 'newer', created: '2024-05-02T00:00:00Z', ports: { 9000: 'STRICT' } }),
      wl('STRICT', { name: 'older', created: '2024-05-01T00:00:00Z', ports: { 8080: 'PERMISSIVE' } }),
    ],
    expect: { '*': ['STRICT', 'PeerAuthentication/shop/older'], 8080: ['PERMISSIVE', 'PeerAuthentication/shop/older'], 9000: ['STRICT', 'PeerAuthentication/shop/older'] },
    warnings: ['Workload-level PeerAuthentication is already defined by PeerAuthentication/shop/older; ignoring PeerAuthentication/shop/newer'],
  },
  {
    name: 'the oldest workload policy wins even when its mode is UNSET (then inherits)',
    policies: [nsWide('STRICT'), wl('UNSET', { name: 'a-old', created: '2024-01-01T00:00:00Z' }), wl('DISABLE', { name: 'b-new', created: '2024-02-01T00:00:00Z' })],
    expect: { '*': ['STRICT', N] },
    warnings: ['ignoring PeerAuthentication/shop/b-new'],
  },
  {
    name: 'same timestamp: name breaks the tie',
    policies: [nsWide('DISABLE', { name: 'zeta', created: '2024-05-01T00:00:00Z' }), nsWide('STRICT', { name: 'alpha', created: '2024-05-01T00:00:00Z' })],
    expect: { '*': ['STRICT', 'PeerAuthentication/shop/alpha'] },
    warnings: ['Namespace-level PeerAuthentication is already defined by PeerAuthentication/shop/alpha; ignoring PeerAuthentication/shop/zeta'],
  },
  {
    name: 'timestamps compare at one-second granularity, then by name',
    policies: [nsWide('DISABLE', { name: 'b', created: '2024-05-01T00:00:00.100Z' }), nsWide('STRICT', { name: 'c', created: '2024-05-01T00:00:00.900Z' })],
    expect: { '*': ['DISABLE', 'PeerAuthentication/shop/b'] },
    warnings: ['ignoring PeerAuthentication/shop/c'],
  },
  {
    name: 'a timestamped policy is older than one without',
    policies: [nsWide('DISABLE', { name: 'aaa' }), nsWide('STRICT', { name: 'zzz', created: '2030-01-01T00:00:00Z' })],
    expect: { '*': ['STRICT', 'PeerAuthentication/shop/zzz'] },
    warnings: ['ignoring PeerAuthentication/shop/aaa'],
  },
  {
    name: 'two mesh-level policies: oldest wins with a warning',
    policies: [mesh('DISABLE', { name: 'late', created: '2024-06-01T00:00:00Z' }), mesh('STRICT', { name: 'early', created: '2024-01-01T00:00:00Z' })],
    expect: { '*': ['STRICT', 'PeerAuthentication/istio-system/early'] },
    warnings: ['Mesh-level PeerAuthentication is already defined by PeerAuthentication/istio-system/early; ignoring PeerAuthentication/istio-system/late'],
  },
  {
    name: 'two untimed workload policies matching through different labels: the name decides',
    policies: [wl('STRICT', { name: 'x', selector: { app: 'cart' } }), wl('DISABLE', { name: 'x2', selector: { version: 'v1' } })],
    expect: { '*': ['STRICT', 'PeerAuthentication/shop/x'] },
    warnings: ['ignoring PeerAuthentication/shop/x2'],
  },
  {
    name: 'workload in the root namespace: root policies are its mesh scope, selectors still ignored',
    workload: { namespace: ROOT, labels: { app: 'gw' } },
    policies: [mesh('STRICT'), { ns: ROOT, name: 'gw', mode: 'DISABLE', selector: { app: 'gw' } }],
    expect: { '*': ['STRICT', M] },
    warnings: ['PeerAuthentication/istio-system/gw has a workload selector in the root namespace'],
  },
  {
    name: 'workload without labels only gets namespace and mesh policies',
    workload: { namespace: 'shop', labels: {} },
    policies: [mesh('DISABLE'), wl('STRICT')],
    expect: { '*': ['DISABLE', M] },
  },
  {
    name: 'port-level DISABLE on a metrics port under namespace STRICT',
    policies: [mesh('PERMISSIVE'), nsWide('STRICT'), wl('UNSET', { ports: { 15020: 'DISABLE' } })],
    expect: { '*': ['STRICT', N], 15020: ['DISABLE', W], 8080: ['STRICT', N] },
  },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const got = resolvePeerAuthentication(row.policies.map(pa), row.root ?? ROOT, row.workload ?? APP);
    for (const [port, [mode, decidedBy]] of Object.entries(row.expect)) {
      const actual = port === '*' ? { mode: got.mode, decidedBy: got.decidedBy } : modeForPort(got, Number(port));
      t.same({ mode: actual.mode, decidedBy: actual.decidedBy }, { mode, decidedBy }, `port ${port}`);
    }
    const expectedWarnings = row.warnings ?? [];
    t.equal(got.warnings.length, expectedWarnings.length, `warnings: ${JSON.stringify(got.warnings)}`);
    expectedWarnings.forEach((w, i) => t.match(got.warnings[i] ?? '', w));
  });
}

t.test('ports map lists exactly the overridden ports, ascending', async (t) => {
  const got = resolvePeerAuthentication([pa(wl('STRICT', { ports: { 9000: 'DISABLE', 80: 'UNSET' } }))], ROOT, APP);
  t.same([...got.ports.keys()], [80, 9000]);
});

t.test('input order does not change the result', async (t) => {
  const set = [nsWide('DISABLE', { name: 'b' }), nsWide('STRICT', { name: 'a' }), wl('PERMISSIVE', { name: 'w2' }), wl('DISABLE', { name: 'w1', ports: { 1: 'STRICT' } })].map(pa);
  const a = resolvePeerAuthentication(set, ROOT, APP);
  const b = resolvePeerAuthentication([...set].reverse(), ROOT, APP);
  t.same({ ...a, ports: [...a.ports] }, { ...b, ports: [...b.ports] });
  t.equal(a.decidedBy, 'PeerAuthentication/shop/w1');
});
