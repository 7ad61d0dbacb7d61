import protobuf from 'protobufjs';
import { lookupType } from '../envoy/protos.js';
import { checkNodeLimits, RequestLimitError } from '../xds/core/node-limits.js';
import { clip } from '../xds/core/limits.js';
import type { Identity } from '../auth/identity.js';
import { nodeClaims } from '../mesh/node-identity.js';
import type { WorkloadInfo, WorkloadResolver } from './workload-resolver.js';

/**
 * The local side of every entry on an access-log stream: the sidecar that logged it,
 * known from the stream's identifier (node) and the identity it authenticated with.
 */

export interface LogIdentifier {
  nodeId: string;
  nodeCluster: string;
  /** node.metadata as plain JSON (google.protobuf.Struct). */
  metadata: Record<string, unknown>;
  logName: string;
}

export class IdentifierError extends Error {
  override name = 'IdentifierError';
}

type StructValue = { null_value?: unknown; number_value?: number; string_value?: string; bool_value?: boolean; struct_value?: StructObj; list_value?: { values?: StructValue[] } };
type StructObj = { fields?: Record<string, StructValue> };

function structValueToJson(v: StructValue): unknown {
  if (v.struct_value !== undefined) return structToJson(v.struct_value);
  if (v.list_value !== undefined) return (v.list_value.values ?? []).map(structValueToJson);
  if (v.string_value !== undefined) return v.string_value;
  if (v.number_value !== undefined) return v.number_value;
  if (v.bool_value !== undefined) return v.bool_value;
  return null;
}

function structToJson(s: StructObj | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = structValueToJson(v);
  return out;
}

/**
 * Decodes StreamAccessLogsMessage.Identifier {node (required), log_name (min 1)}. The node is
 * bounded as on xDS streams (node id, metadata size, depth and values), checked on its bytes
 * before anything is decoded.
 */
export function decodeIdentifier(bytes: Uint8Array): LogIdentifier {
  const type = lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage.Identifier');
  let decoded: { node?: { id?: string; cluster?: string; metadata?: StructObj }; log_name?: string };
  try {
    checkIdentifierNode(bytes);
    decoded = type.toObject(type.decode(bytes), { longs: Number, enums: String, defaults: false }) as typeof decoded;
  } catch (err) {
    if (err instanceof RequestLimitError) throw new IdentifierError(err.message);
    throw new IdentifierError(`identifier does not decode: ${(err as Error).message}`);
  }
  if (!decoded.node) throw new IdentifierError('identifier has no node');
  if (!decoded.log_name) throw new IdentifierError('identifier has an empty log_name');
  return {
    nodeId: decoded.node.id ?? '',
    nodeCluster: decoded.node.cluster ?? '',
    metadata: structToJson(decoded.node.metadata),
    logName: decoded.log_name,
  };
}

/** Identifier.node is field 1; every occurrence is checked (a parser merges repeated message fields). */
function checkIdentifierNode(bytes: Uint8Array): void {
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag !== 0x0a) { r.skipType(tag & 7); continue; }
    const length = r.uint32();
    const end = Math.min(r.pos + length, r.len);
    checkNodeLimits(bytes.subarray(r.pos, end));
    r.pos = end;
  }
}

/**
 * The local workload. The namespace and principal are the authenticated identity's
 * (proven); the workload name and labels come from Istio's node metadata (NAMESPACE,
 * WORKLOAD_NAME, LABELS, CLUSTER_ID), then the registry by the node's IP, then the node
 * id. A node claiming another namespace than its identity is refused.
 */
export function localWorkload(
  identifier: LogIdentifier,
  identity: Identity,
  resolver: WorkloadResolver,
  defaultCluster: string | undefined,
): WorkloadInfo {
  const claims = nodeClaims({ id: identifier.nodeId, metadata: identifier.metadata });
  if (claims.namespace !== undefined && claims.namespace !== identity.namespace) {
    throw new IdentifierError(`node ${clip(identifier.nodeId)} claims namespace ${clip(claims.namespace)} but authenticated as ${identity.spiffeId}`);
  }
  const registered = claims.ip !== undefined ? resolver.byAddress(claims.ip) : undefined;
  const sameNs = registered && registered.namespace === identity.namespace ? registered : undefined;
  const labels = { ...(sameNs?.labels ?? {}), ...claims.labels };
  const workload = claims.workloadName ?? sameNs?.workload ?? claims.nodeId?.name ?? identity.serviceAccount;
  const info: WorkloadInfo = {
    workload,
    namespace: identity.namespace,
    principal: identity.spiffeId,
    labels,
  };
  const service = sameNs?.service;
  if (service !== undefined) info.service = service;
  const cluster = claims.clusterId ?? sameNs?.cluster ?? defaultCluster;
  if (cluster !== undefined) info.cluster = cluster;
  return info;
}
