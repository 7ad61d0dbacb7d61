import type { MeshSettings, WorkloadEntry } from '../../config/model.js';
import type { JsonValue } from '../../envoy/json-form.js';
import { DEFAULT_DNS_DOMAIN, sidecarNodeId } from '../../mesh/node-identity.js';

/**
 * The node a sidecar's bootstrap names itself with: Istio's node id (src/mesh/node-identity.ts),
 * so the proxy can be tied to its WorkloadEntry and Istio tooling reads the id as usual, and
 * istio-agent's metadata keys (NAMESPACE, WORKLOAD_NAME, SERVICE_ACCOUNT, LABELS, MESH_ID,
 * INSTANCE_IPS) plus TRUST_DOMAIN.
 */

export interface SidecarNode {
  id: string;
  cluster: string;
  metadata: Record<string, JsonValue>;
  locality?: { region?: string; zone?: string; sub_zone?: string };
}

/** Istio's locality "region/zone/subzone" → envoy.config.core.v3.Locality. */
export function localityOf(locality: string | undefined): SidecarNode['locality'] {
  if (!locality) return undefined;
  const [region, zone, subZone] = locality.split('/');
  const out: NonNullable<SidecarNode['locality']> = {};
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subZone) out.sub_zone = subZone;
  return Object.keys(out).length > 0 ? out : undefined;
}

export function sidecarNode(workload: WorkloadEntry, mesh: MeshSettings, dnsDomain = DEFAULT_DNS_DOMAIN): SidecarNode {
  const { name, namespace } = workload.meta;
  // Istio: labels are the pod's; for a WorkloadEntry the spec labels are what selectors match.
  const labels = { ...workload.meta.labels, ...workload.spec.labels };
  const metadata: Record<string, JsonValue> = {
    NAMESPACE: namespace,
    WORKLOAD_NAME: name,
    SERVICE_ACCOUNT: workload.spec.serviceAccount,
    LABELS: labels,
    INSTANCE_IPS: workload.spec.address,
    MESH_ID: mesh.trustDomain,
    TRUST_DOMAIN: mesh.trustDomain,
  };
  if (workload.spec.network) metadata['NETWORK'] = workload.spec.network;
  const node: SidecarNode = { id: sidecarNodeId(workload, dnsDomain), cluster: `${name}.${namespace}`, metadata };
  const locality = localityOf(workload.spec.locality);
  if (locality) node.locality = locality;
  return node;
}
