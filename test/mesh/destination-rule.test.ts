import t from 'tap';
import type { ClientTlsMode, DestinationRule } from '../../src/config/model.js';
import {
  clientTlsForPort, destinationRuleFor, indexDestinationRules, resolveHost,
} from '../../src/mesh/destination-rule.js';

/**
 * Which DestinationRule a client uses for a service (Istio's setDestinationRules,
 * mergeDestinationRule, PushContext.destinationRule and SidecarScope.DestinationRule), and which
 * TLS settings apply to a port.
 */
const ROOT = 'istio-system';

interface Spec {
  ns: string;
  name: string;
  host: string;
  mode?: ClientTlsMode;
  exportTo?: string[];
  selector?: Record<string, string>;
  created?: string;
  subsets?: string[];
  ports?: Record<number, ClientTlsMode | null>;
}

function dr(s: Spec): DestinationRule {
  const rule: DestinationRule = {
    kind: 'DestinationRule',
    meta: {
      name: s.name, namespace: s.ns, labels: {}, annotations: {}, source: { file: 'dr.yaml', line: 1 },
      ...(s.created !== undefined ? { creationTimestamp: s.created } : {}),
    },
    host: s.host,
    subsets: (s.subsets ?? []).map((name) => ({ name, labels: { version: name } })),
    exportTo: s.exportTo ?? [],
  };
  if (s.mode !== undefined || s.ports !== undefined) {
    rule.trafficPolicy = {
      ...(s.mode !== undefined ? { tls: { mode: s.mode, subjectAltNames: [] } } : {}),
      portLevelSettings: Object.entries(s.ports ?? {}).map(([port, mode]) => ({
        port: Number(port), ...(mode !== null ? { tls: { mode, subjectAltNames: [] } } : {}),
      })),
    };
  }
  if (s.selector !== undefined) rule.workloadSelector = s.selector;
  return rule;
}

const REVIEWS = { hostname: 'reviews.shop.svc.cluster.local', namespace: 'shop' };
const CLIENT = { namespace: 'web', labels: { app: 'frontend' } };

interface Row {
  name: string;
  rules: Spec[];
  client?: { namespace: string; labels: Record<string, string> };
  service?: { hostname: string; namespace: string };
  /** `ns/name` of the rules merged into the chosen one (first decides), or undefined for none. */
  expect?: string[];
  mode?: ClientTlsMode;
}

const rows: Row[] = [
  { name: 'no rule', rules: [], expect: undefined },
  {
    name: 'a rule in the service namespace, exported by default, applies to clients anywhere',
    rules: [{ ns: 'shop', name: 'reviews', host: 'reviews', mode: 'SIMPLE' }],
    expect: ['shop/reviews'], mode: 'SIMPLE',
  },
  {
    name: 'the client namespace first: its own rule beats the service namespace\'s',
    rules: [{ ns: 'shop', name: 'reviews', host: 'reviews', mode: 'SIMPLE' }, { ns: 'web', name: 'mine', host: 'reviews.shop.svc.cluster.local', mode: 'DISABLE' }],
    expect: ['web/mine'], mode: 'DISABLE',
  },
  {
    name: 'the service namespace before the root namespace',
    rules: [{ ns: ROOT, name: 'mesh', host: '*.local', mode: 'ISTIO_MUTUAL' }, { ns: 'shop', name: 'reviews', host: 'reviews', mode: 'SIMPLE' }],
    expect: ['shop/reviews'],
  },
  {
    name: 'the root namespace last, e.g. a mesh-wide *.local rule',
    rules: [{ ns: ROOT, name: 'mesh', host: '*.local', mode: 'ISTIO_MUTUAL' }],
    expect: ['istio-system/mesh'], mode: 'ISTIO_MUTUAL',
  },
  {
    name: 'exportTo "." keeps a rule to its own namespace',
    rules: [{ ns: 'shop', name: 'private', host: 'reviews', mode: 'SIMPLE', exportTo: ['.'] }],
    expect: undefined,
  },
  {
    name: 'exportTo a namespace list: only those clients see it',
    rules: [{ ns: 'shop', name: 'for-web', host: 'reviews', mode: 'SIMPLE', exportTo: ['web'] }, { ns: 'shop', name: 'for-pay', host: 'ratings', exportTo: ['pay'] }],
    expect: ['shop/for-web'],
  },
  {
    name: 'exportTo that excludes the client falls through to the root namespace',
    rules: [{ ns: 'shop', name: 'for-pay', host: 'reviews', mode: 'SIMPLE', exportTo: ['pay'] }, { ns: ROOT, name: 'mesh', host: '*.local', mode: 'ISTIO_MUTUAL' }],
    expect: ['istio-system/mesh'],
  },
  {
    name: 'the most specific host: exact beats wildcard, longer wildcard beats shorter',
    rules: [
      { ns: 'web', name: 'any', host: '*', mode: 'DISABLE' },
      { ns: 'web', name: 'local', host: '*.local', mode: 'DISABLE' },
      { ns: 'web', name: 'shop', host: '*.shop.svc.cluster.local', mode: 'SIMPLE' },
    ],
    expect: ['web/shop'],
  },
  {
    name: 'a more specific rule in a later namespace does not beat a match in an earlier one',
    rules: [{ ns: 'web', name: 'broad', host: '*', mode: 'DISABLE' }, { ns: 'shop', name: 'exact', host: 'reviews', mode: 'SIMPLE' }],
    expect: ['web/broad'], mode: 'DISABLE',
  },
  {
    name: 'two rules for one host in one namespace merge: the oldest keeps its traffic policy, subsets add up',
    rules: [
      { ns: 'shop', name: 'b-newer', host: 'reviews', mode: 'DISABLE', subsets: ['v2'], created: '2024-02-01T00:00:00Z' },
      { ns: 'shop', name: 'a-older', host: 'reviews', mode: 'SIMPLE', subsets: ['v1'], created: '2024-01-01T00:00:00Z' },
    ],
    expect: ['shop/a-older', 'shop/b-newer'], mode: 'SIMPLE',
  },
  {
    name: 'a rule without a traffic policy takes the next one\'s',
    rules: [
      { ns: 'shop', name: 'subsets-only', host: 'reviews', subsets: ['v1'], created: '2024-01-01T00:00:00Z' },
      { ns: 'shop', name: 'tls', host: 'reviews', mode: 'MUTUAL', created: '2024-02-01T00:00:00Z' },
    ],
    expect: ['shop/subsets-only', 'shop/tls'], mode: 'MUTUAL',
  },
  {
    name: 'different exportTo sets are not merged: each client sees its own',
    rules: [
      { ns: 'shop', name: 'web', host: 'reviews', mode: 'SIMPLE', exportTo: ['web'], created: '2024-01-01T00:00:00Z' },
      { ns: 'shop', name: 'pay', host: 'reviews', mode: 'DISABLE', exportTo: ['pay'], created: '2024-01-02T00:00:00Z' },
    ],
    client: { namespace: 'pay', labels: {} },
    expect: ['shop/pay'], mode: 'DISABLE',
  },
  {
    name: 'a workloadSelector rule applies to the matching clients of its own namespace',
    rules: [
      { ns: 'web', name: 'frontend-only', host: 'reviews.shop.svc.cluster.local', mode: 'DISABLE', selector: { app: 'frontend' } },
      { ns: 'web', name: 'everyone', host: 'reviews.shop.svc.cluster.local', mode: 'SIMPLE' },
    ],
    expect: ['web/frontend-only'], mode: 'DISABLE',
  },
  {
    name: 'a non-matching workloadSelector rule falls back to the rule without a selector',
    rules: [
      { ns: 'web', name: 'batch-only', host: 'reviews.shop.svc.cluster.local', mode: 'DISABLE', selector: { app: 'batch' } },
      { ns: 'web', name: 'everyone', host: 'reviews.shop.svc.cluster.local', mode: 'SIMPLE' },
    ],
    expect: ['web/everyone'], mode: 'SIMPLE',
  },
  {
    name: 'a workloadSelector rule is never exported, whatever its exportTo',
    rules: [{ ns: 'shop', name: 'sel', host: 'reviews', mode: 'SIMPLE', selector: { app: 'frontend' }, exportTo: ['*'] }],
    expect: undefined,
  },
  {
    name: 'a client in the root namespace sees the root namespace\'s private rules',
    rules: [{ ns: ROOT, name: 'private', host: '*.local', mode: 'DISABLE', exportTo: ['.'] }],
    client: { namespace: ROOT, labels: {} },
    expect: ['istio-system/private'],
  },
  {
    name: 'the root namespace\'s private rules stay private to it',
    rules: [{ ns: ROOT, name: 'private', host: '*.local', mode: 'DISABLE', exportTo: ['.'] }],
    expect: undefined,
  },
  {
    name: 'an external host (ServiceEntry in another namespace) matched by a wildcard rule',
    rules: [{ ns: 'web', name: 'ext', host: '*.example.com', mode: 'SIMPLE' }],
    service: { hostname: 'api.example.com', namespace: 'egress' },
    expect: ['web/ext'], mode: 'SIMPLE',
  },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const index = indexDestinationRules(row.rules.map(dr), ROOT);
    const got = destinationRuleFor(index, row.client ?? CLIENT, row.service ?? REVIEWS);
    t.same(got?.from.map((r) => `${r.meta.namespace}/${r.meta.name}`), row.expect);
    if (row.mode !== undefined) t.equal(got?.trafficPolicy?.tls?.mode, row.mode);
  });
}

t.test('subsets merge by name: the first definition of a name wins', async (t) => {
  const index = indexDestinationRules([
    dr({ ns: 'shop', name: 'a', host: 'reviews', subsets: ['v1', 'v2'], created: '2024-01-01T00:00:00Z' }),
    dr({ ns: 'shop', name: 'b', host: 'reviews', subsets: ['v2', 'v3'], created: '2024-01-02T00:00:00Z' }),
  ], ROOT);
  t.same(destinationRuleFor(index, CLIENT, REVIEWS)?.subsets.map((s) => s.name), ['v1', 'v2', 'v3']);
});

t.test('short hosts resolve against the rule\'s namespace; FQDNs, IPs and * stay as written', async (t) => {
  t.equal(resolveHost('reviews', 'shop'), 'reviews.shop.svc.cluster.local');
  t.equal(resolveHost('reviews', 'shop', 'corp.internal'), 'reviews.shop.svc.corp.internal');
  t.equal(resolveHost('reviews.shop', 'web'), 'reviews.shop');
  t.equal(resolveHost('10.0.0.1', 'web'), '10.0.0.1');
  t.equal(resolveHost('*', 'web'), '*');
});

t.test('port-level tls replaces the destination-level tls for its port only, even when it has none', async (t) => {
  const index = indexDestinationRules([dr({ ns: 'shop', name: 'r', host: 'reviews', mode: 'ISTIO_MUTUAL', ports: { 9080: 'DISABLE', 9443: null } })], ROOT);
  const rule = destinationRuleFor(index, CLIENT, REVIEWS);
  t.same(clientTlsForPort(rule, 9080), { tls: { mode: 'DISABLE', subjectAltNames: [] }, portLevel: true });
  t.same(clientTlsForPort(rule, 9443), { portLevel: true }, 'a port entry without tls: no TLS settings from the rule');
  t.same(clientTlsForPort(rule, 8080), { tls: { mode: 'ISTIO_MUTUAL', subjectAltNames: [] }, portLevel: false });
  t.same(clientTlsForPort(undefined, 8080), { portLevel: false });
});
