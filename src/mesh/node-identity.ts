import type { WorkloadEntry } from '../config/model.js';

/**
 * Which workload an Envoy (or proxyless gRPC) node is, from its node id and node metadata. One set
 * of rules for admission, the generators, push planning and telemetry.
 *
 * The node id is Istio's (pkg/istio-agent/agent.go Proxy.ServiceNode, with the ID and DNS domain
 * pilot-agent derives from POD_NAME and POD_NAMESPACE in pilot/cmd/pilot-agent/app/cmd.go):
 *
 *   <type>~<ip>~<workload>.<namespace>~<namespace>.svc.<dns domain>
 *
 * meshd reads an id only in exactly that form: four `~`-separated parts, a non-empty type and
 * IP, and a workload name, a namespace and a DNS domain that are all non-empty, the namespace
 * being the same in the third and fourth parts. Istio itself reads the third and fourth parts
 * loosely (pilot/pkg/model/context.go ParseServiceNodeWithMetadata and GetProxyConfigNamespace)
 * because its proxies always send NAMESPACE; meshd maps an id to a WorkloadEntry only when it is
 * unambiguous. Any other id names no workload (an Envoy with an id of its own, say).
 *
 * Node metadata uses istio-agent's keys (pkg/model/proxy.go NodeMetadata): NAMESPACE and
 * WORKLOAD_NAME name the workload and win over the node id field by field (Istio's VM proxies put
 * the host name in the node id and the workload in the metadata); INSTANCE_IPS, LABELS and
 * CLUSTER_ID describe it. A metadata value counts only when it is a non-empty string.
 */

/** The Kubernetes cluster DNS domain Istio puts in node ids (not the SPIFFE trust domain). */
export const DEFAULT_DNS_DOMAIN = 'cluster.local';

/** A node id in Istio's form, read. */
export interface NodeId {
  type: string;
  ip: string;
  /** The workload (Istio: the pod) name. */
  name: string;
  namespace: string;
  dnsDomain: string;
}

/** What meshd reads of an Envoy node: node.id and node.metadata (a google.protobuf.Struct as JSON). */
export interface EnvoyNode {
  readonly id: string;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** A workload by namespace and name, whether or not it exists in the config. */
export interface NodeWorkloadRef {
  namespace: string;
  name: string;
}

export function formatNodeId(node: NodeId): string {
  return `${node.type}~${node.ip}~${node.name}.${node.namespace}~${node.namespace}.svc.${node.dnsDomain}`;
}

/** The node id `meshd bootstrap` and `meshd grpc-bootstrap` write for a WorkloadEntry's sidecar. */
export function sidecarNodeId(workload: WorkloadEntry, dnsDomain = DEFAULT_DNS_DOMAIN): string {
  const { name, namespace } = workload.meta;
  return formatNodeId({ type: 'sidecar', ip: workload.spec.address, name, namespace, dnsDomain });
}

/** The inverse of formatNodeId; undefined for an id not in that form (see above). */
export function parseNodeId(id: string): NodeId | undefined {
  const parts = id.split('~');
  if (parts.length !== 4) return undefined;
  const [type, ip, pod, domain] = parts as [string, string, string, string];
  if (type === '' || ip === '') return undefined;
  const namespace = domain.slice(0, Math.max(domain.indexOf('.'), 0));
  const svc = `${namespace}.svc.`;
  if (namespace === '' || !domain.startsWith(svc) || domain.length === svc.length) return undefined;
  if (!pod.endsWith(`.${namespace}`) || pod.length === namespace.length + 1) return undefined;
  return { type, ip, name: pod.slice(0, -namespace.length - 1), namespace, dnsDomain: domain.slice(svc.length) };
}

/** A node metadata value as meshd reads it: a non-empty string, else absent. */
function metadataString(metadata: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const v = metadata[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * The workload a node names: NAMESPACE and WORKLOAD_NAME from the metadata, each falling back to
 * the node id's; undefined unless both are known.
 */
export function nodeWorkloadRef(node: EnvoyNode): NodeWorkloadRef | undefined {
  const name = metadataString(node.metadata, 'WORKLOAD_NAME');
  const namespace = metadataString(node.metadata, 'NAMESPACE');
  if (name !== undefined && namespace !== undefined) return { namespace, name };
  const parsed = parseNodeId(node.id);
  if (parsed === undefined) return undefined;
  return { namespace: namespace ?? parsed.namespace, name: name ?? parsed.name };
}

/** Everything a node says about itself, for admission's refusals and telemetry's local side. */
export interface NodeClaims {
  /** The node id, when it is in Istio's form. */
  nodeId?: NodeId;
  /** The namespace the node claims: metadata NAMESPACE, else the node id's. */
  namespace?: string;
  /** Metadata WORKLOAD_NAME, also when no namespace comes with it. */
  workloadName?: string;
  /** The workload the node names (nodeWorkloadRef) and where that came from, for messages. */
  workload?: NodeWorkloadRef & { namedBy: 'node metadata NAMESPACE/WORKLOAD_NAME' | 'node metadata and node id' | 'node id' };
  /** The node id's IP, else the first of metadata INSTANCE_IPS. */
  ip?: string;
  /** Metadata LABELS (string values only). */
  labels: Record<string, string>;
  /** Metadata CLUSTER_ID. */
  clusterId?: string;
}

export function nodeClaims(node: EnvoyNode): NodeClaims {
  const md = node.metadata;
  const nodeId = parseNodeId(node.id);
  const namespace = metadataString(md, 'NAMESPACE');
  const workloadName = metadataString(md, 'WORKLOAD_NAME');
  const claims: NodeClaims = { labels: stringRecord(md['LABELS']) };
  if (nodeId !== undefined) claims.nodeId = nodeId;
  const claimedNamespace = namespace ?? nodeId?.namespace;
  if (claimedNamespace !== undefined) claims.namespace = claimedNamespace;
  if (workloadName !== undefined) claims.workloadName = workloadName;
  const ref = nodeWorkloadRef(node);
  if (ref !== undefined) {
    const namedBy = namespace !== undefined && workloadName !== undefined ? 'node metadata NAMESPACE/WORKLOAD_NAME'
      : namespace !== undefined || workloadName !== undefined ? 'node metadata and node id' : 'node id';
    claims.workload = { ...ref, namedBy };
  }
  const ip = nodeId?.ip ?? metadataString(md, 'INSTANCE_IPS')?.split(',')[0];
  if (ip !== undefined) claims.ip = ip;
  const clusterId = metadataString(md, 'CLUSTER_ID');
  if (clusterId !== undefined) claims.clusterId = clusterId;
  return claims;
}

function stringRecord(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) if (typeof val === 'string') out[k] = val;
  }
  return out;
}
