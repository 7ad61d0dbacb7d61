import type { MeshSettings, WorkloadEntry } from '../../config/model.js';
import type { JsonValue } from '../../envoy/json-form.js';

/**
 * How a sidecar names itself to meshd, in Istio's node id format
 * (pkg/model/context.go ServiceNode: `<type>~<ip>~<pod>.<ns>~<ns>.svc.<dns domain>`), so the
 * proxy can be tied to its WorkloadEntry and Istio tooling reads the id as usual.
 * The metadata keys are istio-agent's (NAMESPACE, WORKLOAD_NAME, SERVICE_ACCOUNT, LABELS,
 * MESH_ID, INSTANCE_IPS) plus TRUST_DOMAIN.
 */

/** The Kubernetes cluster DNS domain Istio puts in node ids (not the SPIFFE trust domain). */
export const DEFAULT_DNS_DOMAIN = 'cluster.local';

export interface SidecarNode {
  id: string;
  cluster: string;
  metadata: Record<string, JsonValue>;
  locality?: { region?: string; zone?: string; sub_zone?: string };
}

export function sidecarNodeId(workload: WorkloadEntry, dnsDomain = DEFAULT_DNS_DOMAIN): string {
  const { name, namespace } = workload.meta;
  return `sidecar~${workload.spec.address}~${name}.${namespace}~${namespace}.svc.${dnsDomain}`;
}

export interface ParsedSidecarNodeId {
  type: string;
  ip: string;
  workload: string;
  namespace: string;
  dnsDomain: string;
}

/** The inverse of sidecarNodeId; undefined for an id not of that form. */
export function parseSidecarNodeId(id: string): ParsedSidecarNodeId | undefined {
  const parts = id.split('~');
  if (parts.length !== 4) return undefined;
  const [type, ip, podPart, domainPart] = parts as [string, string, string, string];
  const dot = podPart.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const workload = podPart.slice(0, dot);
  const namespace = podPart.slice(dot + 1);
  const prefix = `${namespace}.svc.`;
  if (!domainPart.startsWith(prefix) || domainPart.length === prefix.length) return undefined;
  return { type, ip, workload, namespace, dnsDomain: domainPart.slice(prefix.length) };
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
