/**
 * One AuthorizationPolicy rule as Envoy RBAC sees it (pilot/pkg/security/authz/model/model.go):
 * every `from` entry becomes one principal, every `to` entry one permission, and each `when`
 * condition is ANDed into all of them on its side. A rule matches when some permission and some
 * principal match.
 *
 * Within a principal the attributes come in istiod's order: principals, requestPrincipals,
 * serviceAccounts, trustDomains, namespaces, remoteIpBlocks, ipBlocks, then the conditions;
 * within a permission: hosts, methods, paths, ports, then the conditions. Values of one
 * attribute are ORed; notValues become NOT(OR(...)).
 *
 * On a TCP chain an HTTP-only attribute cannot be evaluated: for ALLOW the whole rule is
 * dropped (it then matches nothing), for DENY and AUDIT that attribute alone is dropped (the
 * rule matches more), so policies err towards denying (checkError in model.go).
 */
import type { AuthorizationRule } from '../../../config/model.js';
import { ATTR, GenerateError, conditionGenerator, generators, type Generator } from './attributes.js';
import type { Permission, Policy, Principal, RbacAction } from './rbac-types.js';
import type { TrustDomainBundle } from './trust-domains.js';

export interface AttributeRule {
  key: string;
  values: readonly string[];
  notValues: readonly string[];
  g: Generator;
}

export interface RuleModel {
  /** One list per permission (per `to` entry, or one when `to` is empty); its rules are ANDed. */
  permissions: AttributeRule[][];
  principals: AttributeRule[][];
}

function add(list: AttributeRule[], key: string, values: readonly string[], notValues: readonly string[], g: Generator): void {
  if (values.length > 0 || notValues.length > 0) list.push({ key, values, notValues, g });
}

/** Throws GenerateError for a `when` key Istio does not know. */
export function buildRuleModel(policyNamespace: string, rule: AuthorizationRule): RuleModel {
  const basePermission: AttributeRule[] = [];
  const basePrincipal: AttributeRule[] = [];
  for (const c of rule.when) {
    const found = conditionGenerator(c.key, policyNamespace);
    if (found === undefined) throw new GenerateError(`unknown attribute ${c.key}`);
    add(found.side === 'permission' ? basePermission : basePrincipal, c.key, c.values, c.notValues, found.g);
  }

  const principals = rule.from.map((s) => {
    const list: AttributeRule[] = [];
    add(list, ATTR.srcPrincipal, s.principals, s.notPrincipals, generators.srcPrincipal);
    add(list, ATTR.requestPrincipal, s.requestPrincipals, s.notRequestPrincipals, generators.requestPrincipal);
    add(list, ATTR.srcServiceAccount, s.serviceAccounts, s.notServiceAccounts, generators.srcServiceAccount(policyNamespace));
    add(list, ATTR.srcTrustDomain, s.trustDomains, s.notTrustDomains, generators.srcTrustDomain);
    add(list, ATTR.srcNamespace, s.namespaces, s.notNamespaces, generators.srcNamespace);
    add(list, ATTR.remoteIp, s.remoteIpBlocks, s.notRemoteIpBlocks, generators.remoteIp);
    add(list, ATTR.srcIp, s.ipBlocks, s.notIpBlocks, generators.srcIp);
    return [...list, ...basePrincipal];
  });
  const permissions = rule.to.map((o) => {
    const list: AttributeRule[] = [];
    add(list, ATTR.host, o.hosts, o.notHosts, generators.host);
    add(list, ATTR.method, o.methods, o.notMethods, generators.method);
    add(list, ATTR.path, o.paths, o.notPaths, generators.path);
    add(list, ATTR.destPort, o.ports, o.notPorts, generators.destPort);
    return [...list, ...basePermission];
  });
  return {
    permissions: permissions.length > 0 ? permissions : [basePermission],
    principals: principals.length > 0 ? principals : [basePrincipal],
  };
}

/** Principals and trust domains widened with the mesh's trust domain aliases (MigrateTrustDomain). */
export function withTrustDomainAliases(model: RuleModel, bundle: TrustDomainBundle): RuleModel {
  const migrate = (r: AttributeRule): AttributeRule => {
    if (r.key === ATTR.srcPrincipal) {
      return { ...r, values: bundle.replaceTrustDomainAliases(r.values), notValues: bundle.replaceTrustDomainAliases(r.notValues) };
    }
    if (r.key === ATTR.srcTrustDomain) {
      return { ...r, values: bundle.expandTrustDomainAliases(r.values), notValues: bundle.expandTrustDomainAliases(r.notValues) };
    }
    return r;
  };
  return { permissions: model.permissions, principals: model.principals.map((list) => list.map(migrate)) };
}

/** Called with each value an action other than ALLOW leaves out instead of failing. */
export type OnDropped = (error: GenerateError, key: string) => void;

interface Side<T> {
  name: 'permission' | 'principal';
  or(items: T[]): T;
  not(item: T): T;
  any: T;
}
const PERMISSION: Side<Permission> = { name: 'permission', or: (rules) => ({ or_rules: { rules } }), not: (r) => ({ not_rule: r }), any: { any: true } };
const PRINCIPAL: Side<Principal> = { name: 'principal', or: (ids) => ({ or_ids: { ids } }), not: (p) => ({ not_id: p }), any: { any: true } };

/** The generator's function for one side; a value generator gets one value, a list generator the list. */
function generatorFor<T>(g: Generator, side: Side<T>): (key: string, v: string | readonly string[], forTcp: boolean) => T {
  const fn = (g as Record<string, unknown>)[side.name] as ((key: string, v: never, forTcp: boolean) => T) | undefined;
  return (key, v, forTcp) => {
    if (fn === undefined) throw new GenerateError('unimplemented');
    return fn(key, v as never, forTcp);
  };
}

function generateSide<T>(rules: readonly AttributeRule[], side: Side<T>, forTcp: boolean, action: RbacAction, onDropped: OnDropped): T[] {
  const and: T[] = [];
  for (const r of rules) {
    const one = generatorFor(r.g, side);
    const attempt = (v: string | readonly string[]): T[] => {
      try {
        return [one(r.key, v, forTcp)];
      } catch (err) {
        if (!(err instanceof GenerateError) || action === 'ALLOW') throw err;
        onDropped(err, r.key);
        return [];
      }
    };
    if (r.g.list === true) {
      if (r.values.length > 0) and.push(...attempt(r.values));
      if (r.notValues.length > 0) and.push(...attempt(r.notValues).map(side.not));
      continue;
    }
    const or = r.values.flatMap((v) => attempt(v));
    if (or.length > 0) and.push(side.or(or));
    const notOr = r.notValues.flatMap((v) => attempt(v));
    if (notOr.length > 0) and.push(side.not(side.or(notOr)));
  }
  if (and.length === 0) and.push(side.any);
  return and;
}

/**
 * The Envoy policy for one rule (Model.Generate). Throws GenerateError when an ALLOW rule cannot
 * be expressed (e.g. HTTP attributes on a TCP chain): the caller then leaves the rule out.
 */
export function generatePolicy(model: RuleModel, forTcp: boolean, action: RbacAction, onDropped: OnDropped = () => {}): Policy {
  const permissions: Permission[] = model.permissions.map((rules) => ({
    and_rules: { rules: generateSide(rules, PERMISSION, forTcp, action, onDropped) },
  }));
  const principals: Principal[] = model.principals.map((rules) => ({
    and_ids: { ids: generateSide(rules, PRINCIPAL, forTcp, action, onDropped) },
  }));
  return { permissions, principals };
}
