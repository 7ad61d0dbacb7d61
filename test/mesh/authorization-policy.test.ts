import t from 'tap';
import type { AuthorizationAction, AuthorizationPolicy } from '../../src/config/model.js';
import { authorizationFor, isUnrestricted } from '../../src/mesh/authorization-policy.js';

/**
 * Which AuthorizationPolicies apply to a workload (Istio's ListAuthorizationPolicies +
 * ShouldAttachPolicy): root namespace = mesh-wide, own namespace, selectors, targetRef.
 */
const ROOT = 'istio-system';

interface Spec {
  ns: string;
  name: string;
  action?: AuthorizationAction;
  selector?: Record<string, string>;
  targetRef?: boolean;
  created?: string;
}

function ap(s: Spec): AuthorizationPolicy {
  return {
    kind: 'AuthorizationPolicy',
    meta: {
      name: s.name, namespace: s.ns, labels: {}, annotations: {}, source: { file: 'ap.yaml', line: 1 },
      ...(s.created !== undefined ? { creationTimestamp: s.created } : {}),
    },
    ...(s.selector !== undefined ? { selector: s.selector } : {}),
    targetRefs: s.targetRef === true ? [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }] : [],
    action: s.action ?? 'ALLOW',
    rules: [],
    dryRun: false,
  };
}

const WEB = { namespace: 'shop', labels: { app: 'web', version: 'v1' } };

interface Row {
  name: string;
  policies: Spec[];
  workload?: { namespace: string; labels: Record<string, string> };
  root?: string;
  /** `action:ns/name` in the order the builder receives them (CUSTOM, DENY, ALLOW, AUDIT groups). */
  expect: string[];
}

const rows: Row[] = [
  { name: 'no policy: unrestricted', policies: [], expect: [] },
  { name: 'root namespace without selector: mesh-wide', policies: [{ ns: ROOT, name: 'mesh' }], expect: ['ALLOW:istio-system/mesh'] },
  { name: 'own namespace without selector', policies: [{ ns: 'shop', name: 'ns' }], expect: ['ALLOW:shop/ns'] },
  { name: 'another namespace never applies', policies: [{ ns: 'pay', name: 'other' }], expect: [] },
  {
    name: 'selector: a subset of the workload labels matches; a missing or different label does not',
    policies: [
      { ns: 'shop', name: 'match', selector: { app: 'web' } },
      { ns: 'shop', name: 'both', selector: { app: 'web', version: 'v1' } },
      { ns: 'shop', name: 'other-version', selector: { app: 'web', version: 'v2' } },
      { ns: 'shop', name: 'missing', selector: { tier: 'front' } },
    ],
    expect: ['ALLOW:shop/both', 'ALLOW:shop/match'],
  },
  { name: 'an empty selector selects every workload in scope', policies: [{ ns: 'shop', name: 'all', selector: {} }], expect: ['ALLOW:shop/all'] },
  {
    name: 'a selector policy in the root namespace applies in every namespace (unlike PeerAuthentication)',
    policies: [{ ns: ROOT, name: 'v1-only', selector: { version: 'v1' } }, { ns: ROOT, name: 'v2-only', selector: { version: 'v2' } }],
    expect: ['ALLOW:istio-system/v1-only'],
  },
  { name: 'targetRef attaches to gateways, so to no sidecar', policies: [{ ns: 'shop', name: 'gw', targetRef: true, action: 'DENY' }], expect: [] },
  {
    name: 'grouped by action; root namespace first, then oldest first within a namespace',
    policies: [
      { ns: 'shop', name: 'b-allow', created: '2024-01-02T00:00:00Z' },
      { ns: 'shop', name: 'a-allow', created: '2024-01-03T00:00:00Z' },
      { ns: ROOT, name: 'z-mesh-allow', created: '2024-06-01T00:00:00Z' },
      { ns: 'shop', name: 'deny', action: 'DENY' },
      { ns: 'shop', name: 'audit', action: 'AUDIT' },
      { ns: 'shop', name: 'custom', action: 'CUSTOM' },
    ],
    expect: ['CUSTOM:shop/custom', 'DENY:shop/deny', 'ALLOW:istio-system/z-mesh-allow', 'ALLOW:shop/b-allow', 'ALLOW:shop/a-allow', 'AUDIT:shop/audit'],
  },
  {
    name: 'a workload in the root namespace sees each policy once',
    policies: [{ ns: ROOT, name: 'mesh' }],
    workload: { namespace: ROOT, labels: {} },
    expect: ['ALLOW:istio-system/mesh'],
  },
  {
    name: 'a custom root namespace',
    root: 'mesh-config',
    policies: [{ ns: 'mesh-config', name: 'mesh', action: 'DENY' }, { ns: ROOT, name: 'not-root-here', action: 'DENY' }],
    expect: ['DENY:mesh-config/mesh'],
  },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const a = authorizationFor(row.policies.map(ap), row.root ?? ROOT, row.workload ?? WEB);
    const got = [...a.custom, ...a.deny, ...a.allow, ...a.audit].map((p) => `${p.action}:${p.meta.namespace}/${p.meta.name}`);
    t.same(got, row.expect);
    t.equal(isUnrestricted(a), row.expect.length === 0);
  });
}
