import protobuf from 'protobufjs';
import type { Resource } from '../xds/core/types.js';

/**
 * The last configuration meshd sent each workload, per node id and type URL, with meshd's
 * version_info and the resources as meshd encoded them (the Any bytes, copied through untouched).
 * While meshd is unreachable the xDS proxy answers from it, so a new channel in a running
 * workload, or a restarted workload (same node id), gets its configuration as meshd last saw
 * it; on reconnect the proxy resubscribes with these versions.
 *
 * Bounded: at most `maxNodes` node ids (the least recently updated is dropped), and what one node
 * holds is what meshd sent it, which meshd bounds per stream (src/xds/core/limits.ts).
 */
export interface TypeSnapshot {
  version: string;
  resources: Map<string, Resource>;
}

export const DEFAULT_MAX_NODES = 256;

export class LastConfig {
  private readonly nodes = new Map<string, Map<string, TypeSnapshot>>();

  constructor(private readonly maxNodes = DEFAULT_MAX_NODES) {}

  /**
   * Records a response. `fullState`: the response lists every subscribed resource of the type
   * (LDS and CDS in SotW), so what it leaves out is gone; for the other types a response may
   * carry only some, so it updates those and keeps the rest.
   */
  record(nodeId: string, typeUrl: string, version: string, resources: readonly Resource[], fullState: boolean): void {
    let types = this.nodes.get(nodeId);
    if (types) this.nodes.delete(nodeId); // re-inserted below: most recently updated last
    else types = new Map();
    this.nodes.set(nodeId, types);
    while (this.nodes.size > this.maxNodes) this.nodes.delete(this.nodes.keys().next().value!);
    const previous = types.get(typeUrl);
    const map = fullState || !previous ? new Map<string, Resource>() : new Map(previous.resources);
    for (const r of resources) map.set(r.name, r);
    types.set(typeUrl, { version, resources: map });
  }

  get(nodeId: string, typeUrl: string): TypeSnapshot | undefined {
    return this.nodes.get(nodeId)?.get(typeUrl);
  }

  /** The cached resources a subscription asks for: all of them for a wildcard subscription. */
  select(snapshot: TypeSnapshot, names: readonly string[]): Resource[] {
    if (names.length === 0 || names.includes('*')) return [...snapshot.resources.values()];
    const out: Resource[] = [];
    for (const n of new Set(names)) {
      const r = snapshot.resources.get(n);
      if (r) out.push(r);
    }
    return out;
  }
}

/** The fields of an envoy.service.discovery.v3.DiscoveryResponse the proxy needs, resources as Any bytes. */
export interface SotwResponseView {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: Resource[];
}

/**
 * Reads a DiscoveryResponse field by field (envoy/service/discovery/v3/discovery.proto:
 * version_info 1, resources 2, type_url 4, nonce 5), keeping each resource's Any as its bytes.
 * Each resource is named by field 1 of its payload, which is the name of every xDS resource type
 * meshd serves (Listener, Cluster, RouteConfiguration, ClusterLoadAssignment.cluster_name,
 * Secret). Throws on bytes that are not a message (the proxy then passes the response on uncached).
 */
export function readSotwResponse(bytes: Uint8Array): SotwResponseView {
  const r = protobuf.Reader.create(bytes);
  const out: SotwResponseView = { versionInfo: '', typeUrl: '', nonce: '', resources: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag) {
      case 0x0a: out.versionInfo = r.string(); break;
      case 0x12: {
        const body = r.bytes();
        out.resources.push({ name: resourceName(body), version: '', body });
        break;
      }
      case 0x22: out.typeUrl = r.string(); break;
      case 0x2a: out.nonce = r.string(); break;
      default: r.skipType(tag & 7);
    }
  }
  return out;
}

/** google.protobuf.Any { type_url 1, value 2 } → field 1 (a string) of value. */
function resourceName(any: Uint8Array): string {
  const r = protobuf.Reader.create(any);
  let value: Uint8Array | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 0x12) value = r.bytes();
    else r.skipType(tag & 7);
  }
  if (value === undefined) return '';
  const v = protobuf.Reader.create(value);
  let name = '';
  while (v.pos < v.len) {
    const tag = v.uint32();
    if (tag === 0x0a) name = v.string();
    else v.skipType(tag & 7);
  }
  return name;
}
