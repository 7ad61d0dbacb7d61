/**
 * The AuthorizationPolicies of one workload → the Envoy RBAC filters of its inbound chains, as
 * istiod builds them (pilot/pkg/security/authz/builder/builder.go):
 *
 * - no policy: no filter, everything is allowed;
 * - CUSTOM first: meshd has no external authorizer, so like istiod for an undefined provider,
 *   one DENY filter per provider denies what the CUSTOM rules match;
 * - then one filter each for AUDIT (action LOG: marks matches for audit, never denies), DENY and
 *   ALLOW; a request must pass every filter;
 * - policy names `ns[<namespace>]-policy[<name>]-rule[<index>]`; a policy without rules adds
 *   one policy that never matches, so an ALLOW `spec: {}` allows nothing;
 * - a policy annotated `istio.io/dry-run: "true"` goes into shadow_rules (evaluated, logged,
 *   never enforced); every filter carries istiod's shadow_rules_stat_prefix;
 * - the network filter (TCP chains) has stat_prefix `tcp.` and is built with forTcp: ALLOW
 *   rules that need HTTP attributes are left out, DENY/AUDIT rules lose those attributes only.
 *
 * Fail closed: a DENY or AUDIT rule that cannot be modelled matches everything, an ALLOW rule
 * that cannot be expressed matches nothing, and an unexpected failure yields a single filter
 * that denies everything. Every such case is returned as a problem; nothing half-built is.
 * Pure.
 */
import type { AuthorizationPolicy } from '../../../config/model.js';
import { authorizationPolicyRef, type WorkloadAuthorization } from '../../../mesh/authorization-policy.js';
import { GenerateError } from './attributes.js';
import {
  HTTP_RBAC_FILTER, HTTP_RBAC_TYPE, NETWORK_RBAC_FILTER, NETWORK_RBAC_TYPE, type HttpRbacFilter, type NetworkRbacFilter,
  type Policy, type Rbac, type RbacAction,
} from './rbac-types.js';
import { buildRuleModel, generatePolicy, withTrustDomainAliases } from './rule-model.js';
import { TrustDomainBundle } from './trust-domains.js';

export interface AuthzBuildInput {
  authorization: WorkloadAuthorization;
  trustDomain: string;
  trustDomainAliases: readonly string[];
}

/** Something that did not compile as written; the filters returned already fail closed for it. */
export interface AuthzProblem {
  /** `AuthorizationPolicy/<ns>/<name>`, or undefined for a failure of the whole build. */
  policy?: string;
  rule?: number;
  message: string;
}

export interface BuiltFilters<F> {
  filters: F[];
  problems: AuthzProblem[];
}

/** Istio's RBAC stat prefixes (pilot/pkg/security/authz/model/model.go). */
const TCP_STAT_PREFIX = 'tcp.';
const DRY_RUN_ALLOW_PREFIX = 'istio_dry_run_allow_';
const DRY_RUN_DENY_PREFIX = 'istio_dry_run_deny_';
const EXT_AUTHZ_PREFIX = 'istio-ext-authz';
const BAD_CUSTOM_SUFFIX = '-deny-due-to-bad-CUSTOM-action';
/** The policy of the filter that replaces everything when the build itself fails. */
export const FAIL_CLOSED_POLICY = 'meshd-authorization-build-failed';

const MATCH_NEVER: Policy = {
  permissions: [{ not_rule: { any: true } }],
  principals: [{ not_id: { any: true } }],
};
const MATCH_ALL: Policy = { permissions: [{ any: true }], principals: [{ any: true }] };

function policyName(namespace: string, name: string, rule: number, prefix = ''): string {
  return `${prefix}ns[${namespace}]-policy[${name}]-rule[${rule}]`;
}

interface BuiltRules {
  rules?: Rbac;
  shadowRules?: Rbac;
}

function buildRules(
  policies: readonly AuthorizationPolicy[],
  action: RbacAction,
  forTcp: boolean,
  bundle: TrustDomainBundle,
  problems: AuthzProblem[],
  prefix = '',
): BuiltRules | undefined {
  if (policies.length === 0) return undefined;
  const enforce: Record<string, Policy> = {};
  const shadow: Record<string, Policy> = {};
  let hasEnforce = false;
  let hasShadow = false;
  for (const p of policies) {
    const target = p.dryRun ? shadow : enforce;
    if (p.dryRun) hasShadow = true;
    else hasEnforce = true;
    const ref = authorizationPolicyRef(p);
    if (p.rules.length === 0) {
      target[policyName(p.meta.namespace, p.meta.name, 0, prefix)] = MATCH_NEVER;
      continue;
    }
    p.rules.forEach((rule, i) => {
      const name = policyName(p.meta.namespace, p.meta.name, i, prefix);
      let model;
      try {
        model = withTrustDomainAliases(buildRuleModel(p.meta.namespace, rule), bundle);
      } catch (err) {
        if (!(err instanceof GenerateError)) throw err;
        const outcome = action === 'ALLOW' ? 'the rule allows nothing' : 'the rule matches every request';
        problems.push({ policy: ref, rule: i, message: `${err.message}; ${outcome}` });
        if (action !== 'ALLOW') target[name] = MATCH_ALL;
        return;
      }
      const dropped = (e: GenerateError, key: string): void => {
        if (!e.httpOnly) problems.push({ policy: ref, rule: i, message: `${key}: ${e.message}; the condition is left out, so the rule matches more requests` });
      };
      try {
        target[name] = generatePolicy(model, forTcp, action, dropped);
      } catch (err) {
        if (!(err instanceof GenerateError)) throw err;
        // An ALLOW rule with HTTP attributes does not apply on a TCP chain: Istio's documented behaviour.
        if (!err.httpOnly) problems.push({ policy: ref, rule: i, message: `${err.message}; the rule allows nothing` });
      }
    });
  }
  const out: BuiltRules = {};
  if (hasEnforce) out.rules = { action, policies: enforce };
  if (hasShadow) out.shadowRules = { action, policies: shadow };
  return out;
}

/** shadowRuleStatPrefix: istiod reads the action of possibly absent shadow rules (ALLOW when absent). */
function shadowStatPrefix(shadow: Rbac | undefined): string | undefined {
  const action = shadow?.action ?? 'ALLOW';
  return action === 'ALLOW' ? DRY_RUN_ALLOW_PREFIX : action === 'DENY' ? DRY_RUN_DENY_PREFIX : undefined;
}

/** CUSTOM policies by provider (sorted): each provider's rules as DENY, renamed as istiod marks them. */
function badCustomRules(policies: readonly AuthorizationPolicy[], forTcp: boolean, bundle: TrustDomainBundle, problems: AuthzProblem[]): Rbac[] {
  const byProvider = new Map<string, AuthorizationPolicy[]>();
  for (const p of policies) {
    const list = byProvider.get(p.provider ?? '') ?? [];
    list.push(p);
    byProvider.set(p.provider ?? '', list);
  }
  return [...byProvider.keys()].sort().map((provider) => {
    const prefix = provider === '' ? `${EXT_AUTHZ_PREFIX}-` : `${EXT_AUTHZ_PREFIX}-${provider}-`;
    // Dry-run CUSTOM policies are not enforced by istiod's fallback either.
    const built = buildRules(byProvider.get(provider)!.filter((p) => !p.dryRun), 'DENY', forTcp, bundle, problems, prefix);
    const policiesOut: Record<string, Policy> = {};
    for (const [name, policy] of Object.entries(built?.rules?.policies ?? {})) policiesOut[name + BAD_CUSTOM_SUFFIX] = policy;
    return { action: 'DENY', policies: policiesOut };
  });
}

type Flavour<F> = {
  forTcp: boolean;
  filter(rules: Rbac | undefined, shadow: Rbac | undefined, statPrefix: string | undefined): F;
};

function build<F>(input: AuthzBuildInput, flavour: Flavour<F>): BuiltFilters<F> {
  const problems: AuthzProblem[] = [];
  const { custom, audit, deny, allow } = input.authorization;
  try {
    const bundle = new TrustDomainBundle(input.trustDomain, input.trustDomainAliases);
    const filters: F[] = badCustomRules(custom, flavour.forTcp, bundle, problems).map((rules) => flavour.filter(rules, undefined, undefined));
    for (const [policies, action] of [[audit, 'LOG'], [deny, 'DENY'], [allow, 'ALLOW']] as const) {
      const built = buildRules(policies, action, flavour.forTcp, bundle, problems);
      if (built !== undefined) filters.push(flavour.filter(built.rules, built.shadowRules, shadowStatPrefix(built.shadowRules)));
    }
    return { filters, problems };
  } catch (err) {
    problems.push({ message: `building the RBAC filters failed (${err instanceof Error ? err.message : String(err)}); every request is denied` });
    return { filters: [flavour.filter({ action: 'DENY', policies: { [FAIL_CLOSED_POLICY]: MATCH_ALL } }, undefined, undefined)], problems };
  }
}

function withOptional<T extends object>(base: T, fields: Record<string, unknown>): T {
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) (base as Record<string, unknown>)[k] = v;
  return base;
}

/** RBAC filters for the HTTP connection manager of an inbound HTTP chain, in order. */
export function buildHttpRbacFilters(input: AuthzBuildInput): BuiltFilters<HttpRbacFilter> {
  return build(input, {
    forTcp: false,
    filter: (rules, shadow, statPrefix) => ({
      name: HTTP_RBAC_FILTER,
      typed_config: withOptional({ '@type': HTTP_RBAC_TYPE }, { rules, shadow_rules: shadow, shadow_rules_stat_prefix: statPrefix }),
    }),
  });
}

/** RBAC network filters for an inbound TCP chain, in order, before tcp_proxy. */
export function buildNetworkRbacFilters(input: AuthzBuildInput): BuiltFilters<NetworkRbacFilter> {
  return build(input, {
    forTcp: true,
    filter: (rules, shadow, statPrefix) => ({
      name: NETWORK_RBAC_FILTER,
      typed_config: withOptional({ '@type': NETWORK_RBAC_TYPE, stat_prefix: TCP_STAT_PREFIX }, {
        rules, shadow_rules: shadow, shadow_rules_stat_prefix: statPrefix,
      }),
    }),
  });
}
