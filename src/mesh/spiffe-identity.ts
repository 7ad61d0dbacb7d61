import type { MeshSettings } from '../config/model.js';

/**
 * The SPIFFE IDs of the mesh, formatted and read in one place: a workload's (Istio's
 * `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`, pkg/spiffe/spiffe.go), the
 * control plane's, and the set of trust domains the mesh accepts.
 *
 * Formatting does not validate: the names come from validated config or from a verified
 * credential, and the CA checks every ID it signs against the SPIFFE ID grammar
 * (src/ca/spiffe-id.ts).
 */

const SCHEME = 'spiffe://';

/** The service account a workload runs as: a WorkloadEntry without one runs as `default`, as a pod does. */
export function serviceAccountOf(serviceAccount: string | undefined): string {
  return serviceAccount === undefined || serviceAccount === '' ? 'default' : serviceAccount;
}

/** `spiffe://<trust domain>/ns/<namespace>/sa/<service account>` (Istio's Identity.String). */
export function workloadSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `${SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The namespace meshd runs in, as istiod runs in istio-system. */
export const CONTROL_PLANE_NAMESPACE = 'istio-system';
export const CONTROL_PLANE_SERVICE_ACCOUNT = 'meshd';

/**
 * meshd's own identity, which its serving certificate carries and proxies and agents check:
 * `spiffe://<trust domain>/ns/istio-system/sa/meshd`, as istiod's is `…/ns/istio-system/sa/istiod`.
 */
export function controlPlaneSpiffeId(trustDomain: string): string {
  return workloadSpiffeId(trustDomain, CONTROL_PLANE_NAMESPACE, CONTROL_PLANE_SERVICE_ACCOUNT);
}

export interface WorkloadSpiffeId {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/**
 * Reads a workload identity: exactly `spiffe://<td>/ns/<ns>/sa/<sa>` with no empty part (Istio's
 * spiffe.ParseIdentity, which also accepts empty parts); undefined for any other ID. It checks the
 * shape only: callers that need valid names check them (src/auth/workload-id.ts).
 */
export function parseWorkloadSpiffeId(id: string): WorkloadSpiffeId | undefined {
  if (!id.startsWith(SCHEME)) return undefined;
  const parts = id.slice(SCHEME.length).split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return undefined;
  const [trustDomain, , namespace, , serviceAccount] = parts as [string, string, string, string, string];
  if (trustDomain === '' || namespace === '' || serviceAccount === '') return undefined;
  return { trustDomain, namespace, serviceAccount };
}

/**
 * The namespace in a principal's `/ns/<namespace>/` path segment, whatever the trust domain and the
 * rest of the path: telemetry reads a peer's namespace this way, and a peer may come from another
 * mesh whose IDs are not exactly Istio's shape.
 */
export function namespaceOfPrincipal(principal: string): string | undefined {
  const m = /\/ns\/([^/]+)\//.exec(principal);
  return m ? m[1] : undefined;
}

/**
 * The trust domains whose identities the mesh accepts: its own, then its aliases, de-duplicated
 * (pilot/pkg/networking/plugin/authn/util.go TrustDomainsForValidation).
 */
export function trustDomainsForValidation(mesh: MeshSettings): string[] {
  return [...new Set([mesh.trustDomain, ...mesh.trustDomainAliases])];
}

/**
 * Re-roots SPIFFE IDs in every trust domain the mesh accepts, keeping each original
 * (pkg/spiffe/spiffe.go ExpandWithTrustDomains); an ID without a path is kept as it is.
 */
export function expandWithTrustDomains(ids: readonly string[], mesh: MeshSettings): string[] {
  const out = new Set<string>();
  for (const id of ids) {
    out.add(id);
    const m = /^spiffe:\/\/([^/]+)(\/.*)$/.exec(id);
    if (m === null) continue;
    for (const td of trustDomainsForValidation(mesh)) out.add(`${SCHEME}${td}${m[2]}`);
  }
  return [...out];
}

/** Whether any SPIFFE ID is outside the mesh's own trust domains (and aliases), so needs the federated bundles. */
export function namesForeignTrustDomain(ids: readonly string[], mesh: MeshSettings): boolean {
  const own = trustDomainsForValidation(mesh);
  return ids.some((id) => {
    const m = /^spiffe:\/\/([^/]+)/.exec(id);
    return m !== null && !own.includes(m[1]!);
  });
}
