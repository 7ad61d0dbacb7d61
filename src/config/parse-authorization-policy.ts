/**
 * AuthorizationPolicy (security.istio.io/v1, v1beta1) → model, with Istio's
 * ValidateAuthorizationPolicy (pkg/config/validation/validation.go: validateOneOfSelectorType,
 * validateWorkloadSelector, validatePolicyTargetReference, checkDryRunAnnotation), messages
 * verbatim. The rules are read in parse-authorization-rule.ts.
 *
 * What meshd cannot do is said once, as a warning: CUSTOM (no external authorizer: matching
 * requests are denied, as istiod does for an undefined provider) and targetRef (attaches to
 * gateways and waypoints, which meshd does not run: istiod applies such a policy to no sidecar).
 */
import type { AuthorizationAction, AuthorizationPolicy, AuthorizationRule, ObjectMeta, PolicyTargetReference } from './model.js';
import { Reader, type YamlMap } from './fields.js';
import { checkSelectorLabels } from './parse-peer-authentication.js';
import { readRule } from './parse-authorization-rule.js';

type Path = (string | number)[];

const ACTIONS: readonly AuthorizationAction[] = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'];

/** Istio's annotation.IoIstioDryRun. */
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/** Go's strconv.ParseBool. */
const GO_BOOLS: Readonly<Record<string, boolean>> = {
  '1': true, t: true, T: true, TRUE: true, true: true, True: true,
  '0': false, f: false, F: false, FALSE: false, false: false, False: false,
};

/** The kinds a targetRef may name (allowedTargetRefs), as Istio prints them. */
const TARGET_KINDS = [
  { group: 'core', kind: 'Service', shown: 'core/v1/Service' },
  { group: 'networking.istio.io', kind: 'ServiceEntry', shown: 'networking.istio.io/v1/ServiceEntry' },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway', shown: 'gateway.networking.k8s.io/v1/Gateway' },
  { group: 'gateway.networking.k8s.io', kind: 'GatewayClass', shown: 'gateway.networking.k8s.io/v1/GatewayClass' },
];

const NO_DENY_RULES = 'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request';
const NO_CUSTOM_RULES = 'CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request';

function readTargetRef(r: Reader, v: unknown, path: Path): PolicyTargetReference | undefined {
  const m = r.map(v, path);
  if (m === undefined) return undefined;
  r.fields(m, path, ['group', 'kind', 'name', 'namespace']);
  const ref: PolicyTargetReference = {
    group: r.string(m.group, [...path, 'group']) ?? '',
    kind: r.string(m.kind, [...path, 'kind']) ?? '',
    name: r.string(m.name, [...path, 'name']) ?? '',
  };
  const namespace = r.string(m.namespace, [...path, 'namespace']) ?? '';
  if (ref.name === '') r.issues.error(path, 'targetRef name must be set');
  if (namespace !== '') {
    ref.namespace = namespace;
    r.issues.error([...path, 'namespace'], 'targetRef namespace must not be set; cross namespace referencing is not supported');
  }
  const group = ref.group === '' ? 'core' : ref.group;
  if (!TARGET_KINDS.some((k) => k.group === group && k.kind === ref.kind)) {
    r.issues.error(path, `targetRef must be to one of [${TARGET_KINDS.map((k) => k.shown).join(' ')}] but was ${ref.group}/${ref.kind}`);
  }
  return ref;
}

function readTargetRefs(r: Reader, s: YamlMap): PolicyTargetReference[] {
  const refs: PolicyTargetReference[] = [];
  if (s.targetRef !== undefined && s.targetRef !== null) {
    const ref = readTargetRef(r, s.targetRef, ['spec', 'targetRef']);
    if (ref) refs.push(ref);
  }
  if (s.targetRefs !== undefined && s.targetRefs !== null) {
    if (!Array.isArray(s.targetRefs)) r.issues.error(['spec', 'targetRefs'], 'spec.targetRefs must be a list');
    else s.targetRefs.forEach((v, i) => {
      const ref = readTargetRef(r, v, ['spec', 'targetRefs', i]);
      if (ref) refs.push(ref);
    });
  }
  return refs;
}

function readSelector(r: Reader, s: YamlMap): Record<string, string> | undefined {
  if (s.selector === undefined || s.selector === null) return undefined;
  const sel = r.map(s.selector, ['spec', 'selector']) ?? {};
  r.fields(sel, ['spec', 'selector'], ['matchLabels']);
  const labels = r.stringMap(sel.matchLabels, ['spec', 'selector', 'matchLabels']) ?? {};
  checkSelectorLabels(r, ['spec', 'selector', 'matchLabels'], labels);
  if (Object.keys(labels).length === 0) r.issues.warn(['spec', 'selector'], 'workload selector specified without labels');
  return labels;
}

function readDryRun(r: Reader, meta: ObjectMeta, action: AuthorizationAction): boolean {
  const value = meta.annotations[DRY_RUN_ANNOTATION];
  if (value === undefined) return false;
  const path = ['metadata', 'annotations', DRY_RUN_ANNOTATION];
  const who = `${meta.namespace}/${meta.name}`;
  if (action !== 'ALLOW' && action !== 'DENY') {
    r.issues.error(path, `the annotation ${DRY_RUN_ANNOTATION} currently only supports action ALLOW/DENY, found action ${action} in ${who}`);
    return false;
  }
  const parsed = GO_BOOLS[value];
  if (parsed === undefined) {
    r.issues.error(path, `${who} has annotation ${DRY_RUN_ANNOTATION} with invalid value (${value}): strconv.ParseBool: parsing ${JSON.stringify(value)}: invalid syntax`);
    return false;
  }
  return parsed;
}

export function parseAuthorizationPolicy(spec: unknown, r: Reader, meta: ObjectMeta): AuthorizationPolicy {
  const s = r.map(spec, ['spec']) ?? {};
  r.fields(s, ['spec'], ['selector', 'targetRef', 'targetRefs', 'rules', 'action', 'provider']);

  const selector = readSelector(r, s);
  const targetRefs = readTargetRefs(r, s);
  const targetRefSet = s.targetRef !== undefined && s.targetRef !== null;
  const targetRefsSet = Array.isArray(s.targetRefs) && s.targetRefs.length > 0;
  if ([selector !== undefined, targetRefSet, targetRefsSet].filter(Boolean).length > 1) {
    r.issues.error(['spec'], 'only one of targetRefs or workloadSelector can be set');
  }
  if (targetRefs.length > 0) {
    r.issues.warn(['spec', targetRefSet ? 'targetRef' : 'targetRefs'],
      'targetRef attaches a policy to gateways and waypoints, which meshd does not run; like istiod for sidecars, meshd applies this policy to no workload');
  }

  const action = r.enumValue(s.action, ['spec', 'action'], ACTIONS) ?? 'ALLOW';
  let provider: string | undefined;
  if (s.provider !== undefined && s.provider !== null) {
    const p = r.map(s.provider, ['spec', 'provider']) ?? {};
    r.fields(p, ['spec', 'provider'], ['name']);
    provider = r.string(p.name, ['spec', 'provider', 'name']) ?? '';
    if (action !== 'CUSTOM') r.issues.error(['spec', 'provider'], `\`provider\` must not be with non CUSTOM action, found ${action}`);
  }

  const rulesGiven = Array.isArray(s.rules) && s.rules.length > 0;
  if (s.rules !== undefined && s.rules !== null && !Array.isArray(s.rules)) r.issues.error(['spec', 'rules'], 'spec.rules must be a list');
  if (action === 'CUSTOM') {
    if (!rulesGiven) r.issues.error(['spec'], NO_CUSTOM_RULES);
    else if (provider === undefined || provider === '') r.issues.error(['spec'], '`provider.name` must not be empty');
    r.issues.warn(['spec', 'action'],
      'action CUSTOM needs an external authorizer (MeshConfig extensionProviders), which meshd does not run; ' +
      'as istiod does for an undefined provider, requests matching this policy\'s rules are denied');
  }
  if (action === 'DENY' && !rulesGiven) r.issues.error(['spec'], NO_DENY_RULES);

  const rules: AuthorizationRule[] = [];
  if (rulesGiven) {
    (s.rules as unknown[]).forEach((raw, i) => {
      const rule = readRule(r, raw, ['spec', 'rules', i], i, action);
      if (rule) rules.push(rule);
    });
  }

  const policy: AuthorizationPolicy = {
    kind: 'AuthorizationPolicy', meta, targetRefs, action, rules, dryRun: readDryRun(r, meta, action),
  };
  if (selector !== undefined) policy.selector = selector;
  if (provider !== undefined) policy.provider = provider;
  return policy;
}
