import type { Test } from 'tap';
import { decodeMessage } from '../../../src/envoy/protos.js';

/**
 * gRPC's own per-resource view of what a control plane sent it (CSDS, gRFC A40): for every
 * resource it watches, ACKED, NACKED (with its validation error), REQUESTED (asked for, nothing
 * arrived yet) or DOES_NOT_EXIST (the server's answer left it out).
 *
 * C-core 1.51's `grpc._cython.cygrpc.dump_xds_configs()` returns one serialized
 * envoy.service.status.v3.ClientConfig (its single XdsClient); later C-cores wrap their clients in a
 * ClientStatusResponse. Both are read here. The statuses come from `generic_xds_configs`
 * (envoy/service/status/v3/csds.proto).
 */
export type XdsClientStatus = 'ACKED' | 'NACKED' | 'REQUESTED' | 'DOES_NOT_EXIST' | 'UNKNOWN';

export interface XdsResourceStatus {
  typeUrl: string;
  name: string;
  status: XdsClientStatus;
  /** The version last accepted ('' when none was). */
  version: string;
  /** The validation error of the last rejected update. */
  error?: string;
  /** The version that was rejected. */
  rejectedVersion?: string;
  /** When the client last accepted it (ms since the epoch, the client's clock: this machine's). */
  updatedAtMs?: number;
}

interface GenericXdsConfig {
  type_url?: string;
  name?: string;
  version_info?: string;
  client_status?: XdsClientStatus;
  last_updated?: { seconds?: string | number; nanos?: number };
  error_state?: { details?: string; version_info?: string };
}
interface ClientConfig { node?: { id?: string }; generic_xds_configs?: GenericXdsConfig[] }

const TYPE_PREFIX = 'type.googleapis.com/';
const CLIENT_CONFIG = `${TYPE_PREFIX}envoy.service.status.v3.ClientConfig`;
const CLIENT_STATUS_RESPONSE = `${TYPE_PREFIX}envoy.service.status.v3.ClientStatusResponse`;

function tryDecode<T>(typeUrl: string, bytes: Uint8Array): T | undefined {
  try {
    return decodeMessage(typeUrl, bytes) as T;
  } catch {
    return undefined;
  }
}

/**
 * The two shapes share field 1, so either may decode as the other without an error; the wrong
 * reading shows as a node id full of protobuf bytes and type URLs that are not type URLs.
 */
function plausible(c: ClientConfig): boolean {
  // eslint-disable-next-line no-control-regex
  const cleanId = !/[\x00-\x1f]/.test(c.node?.id ?? '');
  return cleanId && (c.generic_xds_configs ?? []).every((g) => (g.type_url ?? '').startsWith(TYPE_PREFIX));
}

function configsOf(bytes: Uint8Array): ClientConfig[] {
  if (bytes.length === 0) return [];
  const one = tryDecode<ClientConfig>(CLIENT_CONFIG, bytes);
  if (one?.node?.id !== undefined && plausible(one)) return [one];
  const many = tryDecode<{ config?: ClientConfig[] }>(CLIENT_STATUS_RESPONSE, bytes);
  if (many !== undefined && (many.config ?? []).every(plausible)) return many.config ?? [];
  throw new Error(`not a CSDS dump (neither a ClientConfig nor a ClientStatusResponse): ${bytes.length} bytes`);
}

/** Every resource in a CSDS dump, sorted by type and name. */
export function decodeCsds(bytes: Uint8Array): XdsResourceStatus[] {
  const out: XdsResourceStatus[] = [];
  for (const config of configsOf(bytes)) {
    for (const g of config.generic_xds_configs ?? []) {
      const r: XdsResourceStatus = {
        typeUrl: g.type_url ?? '',
        name: g.name ?? '',
        status: g.client_status ?? 'UNKNOWN',
        version: g.version_info ?? '',
      };
      if (g.last_updated !== undefined) r.updatedAtMs = Number(g.last_updated.seconds ?? 0) * 1000 + Math.floor((g.last_updated.nanos ?? 0) / 1e6);
      if (g.error_state?.details !== undefined) r.error = g.error_state.details;
      if (g.error_state?.version_info !== undefined) r.rejectedVersion = g.error_state.version_info;
      out.push(r);
    }
  }
  return out.sort((a, b) => (a.typeUrl === b.typeUrl ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.typeUrl < b.typeUrl ? -1 : 1));
}

const SHORT: Record<string, string> = {
  'envoy.config.listener.v3.Listener': 'LDS',
  'envoy.config.route.v3.RouteConfiguration': 'RDS',
  'envoy.config.cluster.v3.Cluster': 'CDS',
  'envoy.config.endpoint.v3.ClusterLoadAssignment': 'EDS',
};

/** `LDS` etc. for the four gRPC types, the message name otherwise. */
export function shortType(typeUrl: string): string {
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  return SHORT[name] ?? name;
}

/** One line per resource, for messages: `LDS xds.istio.io/…: NACKED (error)`. */
export function describe(resources: readonly XdsResourceStatus[]): string {
  return resources.map((r) => `${shortType(r.typeUrl)} ${r.name}: ${r.status}${r.error ? ` (${r.error})` : ''}`).join('; ');
}

/** The resources that are not ACKED. */
export function notAcked(resources: readonly XdsResourceStatus[]): XdsResourceStatus[] {
  return resources.filter((r) => r.status !== 'ACKED');
}

/**
 * Every resource is ACKED, and there is at least one of each of `types` (short names, e.g.
 * ['LDS', 'RDS', 'CDS', 'EDS']). A NACK from gRPC is a bug in meshd: its text is in the message.
 */
export function expectAllAcked(t: Test, resources: readonly XdsResourceStatus[], what: string, types: readonly string[] = []): void {
  const bad = notAcked(resources);
  t.same(bad.map((r) => `${shortType(r.typeUrl)} ${r.name}: ${r.status}${r.error ? ` (${r.error})` : ''}`), [],
    bad.length === 0 ? `${what}: all ${resources.length} resources ACKED` : `${what}: not ACKED: ${describe(bad)}`);
  const present = new Set(resources.map((r) => shortType(r.typeUrl)));
  const missing = types.filter((ty) => !present.has(ty));
  t.same(missing, [], missing.length === 0 ? `${what}: holds ${types.join(', ') || 'resources'}` : `${what}: no ${missing.join(', ')} in ${describe(resources)}`);
}

/** The resource of that short type and name, if the dump holds it. */
export function findResource(resources: readonly XdsResourceStatus[], type: string, name: string): XdsResourceStatus | undefined {
  return resources.find((r) => shortType(r.typeUrl) === type && r.name === name);
}
