import type { WorkloadEntry } from '../../config/model.js';
import type { Filter, HttpFilter } from '../../envoy/messages.js';
import { authorizationFor, isUnrestricted, type WorkloadAuthorization } from '../../mesh/authorization-policy.js';
import { workloadLabels } from '../../mesh/labels.js';
import type { MeshIndex } from '../../mesh/mesh-index.js';
import { buildHttpRbacFilters, buildNetworkRbacFilters, type AuthzProblem } from './authz/build-rbac.js';

/**
 * The RBAC filters of one workload's inbound chains, built once per workload and snapshot.
 * Every port of the workload gets the same filters (a rule's `ports` becomes a
 * destination_port permission inside them), and both the mTLS and the plaintext chain of a
 * PERMISSIVE port carry them: on plaintext Envoy has no peer certificate, so `authenticated`
 * principals never match there, as in Istio.
 *
 * - HTTP chains: the RBAC HTTP filters go before the router, in the builder's order (DENY before
 *   ALLOW; an AUDIT filter with action LOG changes no verdict);
 * - TCP chains: the RBAC network filters go before tcp_proxy (pilot/pkg/networking/core/
 *   listener_inbound.go buildInboundNetworkFilters: MX, RBAC, stats, tcp_proxy).
 *
 * Undefined when no policy applies: the chains are then exactly what they were without
 * authorization, byte for byte.
 */
export interface InboundAuthz {
  http: HttpFilter[];
  network: Filter[];
  /** What did not compile as written, each already failing closed in the filters. */
  warnings: string[];
}

export function workloadAuthorization(index: MeshIndex, workload: WorkloadEntry): WorkloadAuthorization {
  const snapshot = index.snapshot;
  return index.cached(`authz-of:${workload.meta.namespace}/${workload.meta.name}`, () =>
    authorizationFor(snapshot.authorizationPolicies, snapshot.mesh.rootNamespace, {
      namespace: workload.meta.namespace,
      labels: workloadLabels(workload),
    }));
}

function describe(workload: WorkloadEntry, p: AuthzProblem): string {
  const where = p.policy === undefined ? '' : p.rule === undefined ? `${p.policy}: ` : `${p.policy} rule ${p.rule}: `;
  return `WorkloadEntry ${workload.meta.namespace}/${workload.meta.name}: ${where}${p.message}`;
}

export function inboundAuthz(index: MeshIndex, workload: WorkloadEntry): InboundAuthz | undefined {
  return index.cached(`authz-filters:${workload.meta.namespace}/${workload.meta.name}`, () => {
    const authorization = workloadAuthorization(index, workload);
    if (isUnrestricted(authorization)) return undefined;
    const mesh = index.snapshot.mesh;
    const input = { authorization, trustDomain: mesh.trustDomain, trustDomainAliases: mesh.trustDomainAliases };
    const http = buildHttpRbacFilters(input);
    const network = buildNetworkRbacFilters(input);
    const warnings = [...new Set([...http.problems, ...network.problems].map((p) => describe(workload, p)))];
    return { http: http.filters, network: network.filters, warnings };
  });
}
