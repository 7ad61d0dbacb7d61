/**
 * Which AuthorizationPolicies apply to one workload, as istiod lists them for a sidecar
 * (pilot/pkg/model/authorization.go ListAuthorizationPolicies, pilot/pkg/model/policyattachment.go
 * ShouldAttachPolicy; pilot/pkg/model/config.go sortConfigByCreationTime):
 *
 * - policies in the root namespace apply mesh-wide, policies in the workload's namespace apply
 *   to it; a policy anywhere else never does;
 * - no selector: every workload in scope; a selector: the workloads whose labels include its
 *   matchLabels. Unlike PeerAuthentication, a selector policy in the root namespace applies to
 *   matching workloads in every namespace;
 * - a policy with targetRef(s) attaches to gateways and waypoints only, so to no sidecar;
 * - within a namespace, oldest first; the root namespace's policies come first.
 *
 * The result is grouped by action: CUSTOM, DENY, ALLOW, AUDIT. Pure (the per-namespace index is
 * memoized on the immutable policy list).
 */
import { compareByCreation } from './creation-order.js';
import type { AuthorizationPolicy } from '../config/model.js';
import { labelsMatch } from './labels.js';
import type { WorkloadRef } from './peer-authentication.js';

export interface WorkloadAuthorization {
  readonly custom: readonly AuthorizationPolicy[];
  readonly deny: readonly AuthorizationPolicy[];
  readonly allow: readonly AuthorizationPolicy[];
  readonly audit: readonly AuthorizationPolicy[];
}

export const NO_AUTHORIZATION: WorkloadAuthorization = Object.freeze({ custom: [], deny: [], allow: [], audit: [] });

export function authorizationPolicyRef(p: AuthorizationPolicy): string {
  return `AuthorizationPolicy/${p.meta.namespace}/${p.meta.name}`;
}

/** Whether a policy in scope attaches to a workload with these labels. */
function attachesTo(p: AuthorizationPolicy, labels: Readonly<Record<string, string>>): boolean {
  if (p.targetRefs.length > 0) return false;
  return p.selector === undefined || labelsMatch(p.selector, labels);
}

/** True when no policy applies: Envoy gets no RBAC filter and allows everything. */
export function isUnrestricted(a: WorkloadAuthorization): boolean {
  return a.custom.length + a.deny.length + a.allow.length + a.audit.length === 0;
}

/**
 * Policies by namespace, oldest first, computed once per policy list: a snapshot's list is
 * immutable, and every workload of every proxy asks.
 */
const byNamespaceCache = new WeakMap<readonly AuthorizationPolicy[], ReadonlyMap<string, readonly AuthorizationPolicy[]>>();

function byNamespace(policies: readonly AuthorizationPolicy[]): ReadonlyMap<string, readonly AuthorizationPolicy[]> {
  let index = byNamespaceCache.get(policies);
  if (index === undefined) {
    const m = new Map<string, AuthorizationPolicy[]>();
    for (const p of policies) {
      const list = m.get(p.meta.namespace);
      if (list === undefined) m.set(p.meta.namespace, [p]);
      else list.push(p);
    }
    for (const list of m.values()) list.sort(compareByCreation);
    byNamespaceCache.set(policies, (index = m));
  }
  return index;
}

export function authorizationFor(
  policies: readonly AuthorizationPolicy[],
  rootNamespace: string,
  workload: WorkloadRef,
): WorkloadAuthorization {
  const namespaces = rootNamespace === workload.namespace ? [rootNamespace] : [rootNamespace, workload.namespace];
  const out = { custom: [] as AuthorizationPolicy[], deny: [] as AuthorizationPolicy[], allow: [] as AuthorizationPolicy[], audit: [] as AuthorizationPolicy[] };
  const index = byNamespace(policies);
  for (const ns of namespaces) {
    for (const p of index.get(ns) ?? []) {
      if (!attachesTo(p, workload.labels)) continue;
      switch (p.action) {
        case 'CUSTOM': out.custom.push(p); break;
        case 'DENY': out.deny.push(p); break;
        case 'ALLOW': out.allow.push(p); break;
        case 'AUDIT': out.audit.push(p); break;
      }
    }
  }
  return out;
}
