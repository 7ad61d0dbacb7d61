import type { WorkloadEntry } from '../../../config/model.js';
import type { HttpFilter } from '../../../envoy/messages.js';
import type { MeshIndex } from '../../../mesh/mesh-index.js';
import { buildHttpRbacFilters } from '../authz/build-rbac.js';
import { HTTP_RBAC_TYPE, type Policy } from '../authz/rbac-types.js';
import { workloadAuthorization } from '../inbound-authz.js';

/**
 * The RBAC HTTP filters of a proxyless gRPC server listener (gRFC A41), as Istio's grpcgen
 * emits them (pilot/pkg/networking/grpcgen/lds.go buildRBAC): at most one DENY filter named
 * `envoy.filters.http.rbac.DENY`, then one ALLOW filter named `envoy.filters.http.rbac`,
 * both before the router. The rules are the sidecar's HTTP rules (build-rbac.ts), so the two
 * enforce the same policy, with what gRPC cannot take left out:
 *
 * - AUDIT: A41 has no LOG action (grpc-js-xds NACKs `Invalid RBAC action LOG`); AUDIT only
 *   logs, so leaving it out changes no verdict;
 * - dry-run policies (shadow_rules): gRPC ignores shadow rules, and a filter with shadow rules
 *   only is NACKed (`no rules found`); they are left out, which is what dry run means;
 * - several DENY filters (CUSTOM without an authorizer, then DENY) become one, their policies
 *   side by side: a request denied by any of them is denied by the union. Two filters of one
 *   name would be ambiguous.
 *
 * A plaintext server listener (DISABLE, or PERMISSIVE, which gRPC serves as plaintext) has no
 * peer certificate, so `authenticated` principals never match there, as on Envoy's plaintext
 * chains. Empty when no policy applies: the listener is then byte-identical to one without
 * authorization.
 */
export const GRPC_RBAC_DENY_FILTER = 'envoy.filters.http.rbac.DENY';
export const GRPC_RBAC_ALLOW_FILTER = 'envoy.filters.http.rbac';

export function grpcRbacFilters(index: MeshIndex, workload: WorkloadEntry): readonly HttpFilter[] {
  return index.cached(`grpc-authz:${workload.meta.namespace}/${workload.meta.name}`, () => {
    const authorization = workloadAuthorization(index, workload);
    if (authorization.deny.length + authorization.allow.length + authorization.custom.length === 0) return [];
    const mesh = index.snapshot.mesh;
    const built = buildHttpRbacFilters({
      authorization: { ...authorization, audit: [] },
      trustDomain: mesh.trustDomain,
      trustDomainAliases: mesh.trustDomainAliases,
    });
    const deny: Record<string, Policy> = {};
    let denies = false;
    let allow: Record<string, Policy> | undefined;
    for (const f of built.filters) {
      const rules = f.typed_config.rules;
      if (rules === undefined) continue; // dry run only
      if (rules.action === 'DENY') {
        denies = true;
        Object.assign(deny, rules.policies);
      } else if (rules.action === 'ALLOW') {
        allow = rules.policies ?? {};
      }
    }
    const out: HttpFilter[] = [];
    if (denies && Object.keys(deny).length > 0) {
      out.push({ name: GRPC_RBAC_DENY_FILTER, typed_config: { '@type': HTTP_RBAC_TYPE, rules: { action: 'DENY', policies: deny } } });
    }
    if (allow !== undefined) {
      out.push({ name: GRPC_RBAC_ALLOW_FILTER, typed_config: { '@type': HTTP_RBAC_TYPE, rules: { action: 'ALLOW', policies: allow } } });
    }
    return out;
  });
}
