import { createHash } from 'node:crypto';
import type { MeshSnapshot, WorkloadEntry } from '../../config/model.js';
import type { GenerateRequest, Generator, ProxyInfo, Resource } from '../core/types.js';
import { createResource } from '../core/resource.js';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, type ResourceMessages, type ResourceType, type ResourceTypeUrl } from '../../envoy/resource-types.js';
import { indexFor, type MeshIndex } from '../../mesh/mesh-index.js';
import { namespaceOutbound, proxyConfigParts, type ProxyConfigParts } from './proxy-config.js';
import { nodeWorkloadRef } from '../../mesh/node-identity.js';
import { agentFrontedParts, isAgentFronted } from './secret-source.js';

/**
 * The four xDS generators of Envoy sidecars (CDS, EDS, LDS, RDS). Each reads the current
 * snapshot through the getter, finds the proxy's WorkloadEntry, and encodes its part of
 * `buildProxyConfig`.
 *
 * Encoding is memoised on the built objects, which are memoised per snapshot: a cluster every
 * sidecar sees is encoded once per snapshot however many proxies ask, the arrays a whole
 * namespace shares are encoded (and indexed by name) once, and the content-hash version lets
 * an unchanged resource keep its version across snapshots.
 *
 * A sidecar behind `meshd agent` (node metadata MESHD_SDS_SOURCE=agent) gets the same config with
 * its secret references resolved against the agent (secret-source.ts), memoised the same way.
 */

interface TypeSpec<U extends ResourceTypeUrl = ResourceTypeUrl> {
  type: ResourceType<U>;
  /** The proxy's resources of this type, as arrays to concatenate (own first). */
  arrays: (p: ProxyConfigParts) => ReadonlyArray<readonly ResourceMessages[U][]>;
}

type Message = ResourceMessages[ResourceTypeUrl];

const TYPES: readonly TypeSpec[] = [
  { type: CLUSTER, arrays: (p) => [p.own.clusters, p.shared.clusters] },
  { type: ENDPOINT, arrays: (p) => [p.shared.endpoints] },
  { type: LISTENER, arrays: (p) => [p.own.listeners, p.sharedListeners] },
  { type: ROUTE, arrays: (p) => [p.shared.routes] },
];

const encodedObjects = new WeakMap<Message, Resource>();
const encodedArrays = new WeakMap<readonly Message[], Resource[]>();
const byNameIndexes = new WeakMap<readonly Resource[], ReadonlyMap<string, Resource>>();
const fingerprints = new WeakMap<readonly Resource[], string>();

let byContent = new Map<string, Resource>();
let previousByContent = new Map<string, Resource>();

function encodeOnce(spec: TypeSpec, value: Message): Resource {
  let r = encodedObjects.get(value);
  if (r === undefined) {
    // Equal JSON, equal resource: JSON.stringify + SHA-1 cost a fraction of protobufjs's fromObject + encode.
    const key = `${spec.type.typeUrl}\u0000${createHash('sha1').update(JSON.stringify(value)).digest('base64')}`;
    r = byContent.get(key) ?? previousByContent.get(key) ?? createResource(spec.type.typeUrl, spec.type.nameOf(value), value);
    if (!byContent.has(key)) {
      if (byContent.size >= 100_000) { previousByContent = byContent; byContent = new Map(); }
      byContent.set(key, r);
    }
    encodedObjects.set(value, r);
  }
  return r;
}

function encodeArray(spec: TypeSpec, values: readonly Message[]): Resource[] {
  let rs = encodedArrays.get(values);
  if (rs === undefined) {
    rs = values.map((v) => encodeOnce(spec, v));
    encodedArrays.set(values, rs);
  }
  return rs;
}

function byName(rs: readonly Resource[]): ReadonlyMap<string, Resource> {
  let m = byNameIndexes.get(rs);
  if (m === undefined) {
    m = new Map(rs.map((r) => [r.name, r]));
    byNameIndexes.set(rs, m);
  }
  return m;
}

function fingerprintOf(rs: readonly Resource[]): string {
  let f = fingerprints.get(rs);
  if (f === undefined) {
    f = rs.map((r) => `${r.name}@${r.version}`).join(',');
    fingerprints.set(rs, f);
  }
  return f;
}

/** The encoded pieces of one workload's resources of one type. */
function encodedPieces(spec: TypeSpec, parts: ProxyConfigParts): Resource[][] {
  return spec.arrays(parts).map((a) => encodeArray(spec, a));
}

function workloadOf(index: MeshIndex, proxy: ProxyInfo): WorkloadEntry | undefined {
  const ref = nodeWorkloadRef(proxy);
  // Admission refuses unknown workloads; one deleted later simply gets no resources.
  return ref === undefined ? undefined : index.workload(ref.namespace, ref.name);
}

function generator(spec: TypeSpec, snapshot: () => MeshSnapshot): Generator {
  return {
    typeUrl: spec.type.typeUrl,
    generate(proxy: ProxyInfo, request: GenerateRequest): Resource[] {
      const index = indexFor(snapshot());
      const workload = workloadOf(index, proxy);
      if (workload === undefined) return [];
      const agent = isAgentFronted(proxy.metadata);
      const parts = agent ? agentFrontedParts(proxyConfigParts(index, workload)) : proxyConfigParts(index, workload);
      if (request.names === undefined) {
        return index.cached(`resources${agent ? '@agent' : ''}:${spec.type.typeUrl}:${workload.meta.namespace}/${workload.meta.name}`, () =>
          ([] as Resource[]).concat(...encodedPieces(spec, parts)));
      }
      const maps = encodedPieces(spec, parts).map(byName);
      const out: Resource[] = [];
      for (const name of request.names) {
        for (const m of maps) {
          const r = m.get(name);
          if (r !== undefined) {
            out.push(r);
            break;
          }
        }
      }
      return out;
    },
  };
}

export function createSidecarGenerators(snapshot: () => MeshSnapshot): Generator[] {
  return TYPES.map((spec) => generator(spec, snapshot));
}

/**
 * Names and versions of everything a workload's sidecar is served, as one string: equal
 * fingerprints in two snapshots mean the sidecar would receive exactly the same resources.
 * Cheap after the first call per snapshot (namespace-shared pieces are fingerprinted once).
 */
export function sidecarFingerprint(snapshot: MeshSnapshot, workload: WorkloadEntry): string {
  const index = indexFor(snapshot);
  const parts = proxyConfigParts(index, workload);
  return TYPES.map((spec) => encodedPieces(spec, parts).map(fingerprintOf).join('|')).join('#');
}

/** What a namespace's sidecars share (outbound clusters, endpoints, listeners, routes), fingerprinted once per snapshot. */
export function namespaceSharedFingerprint(snapshot: MeshSnapshot, namespace: string): string {
  const index = indexFor(snapshot);
  return index.cached(`ns-fingerprint:${namespace}`, () => {
    const shared = namespaceOutbound(index, namespace);
    const pieces: Array<[TypeSpec, readonly Message[]]> = [[TYPES[0]!, shared.clusters], [TYPES[1]!, shared.endpoints], [TYPES[2]!, shared.listeners], [TYPES[3]!, shared.routes]];
    return pieces.map(([spec, arr]) => fingerprintOf(encodeArray(spec, arr))).join('#');
  });
}

/** The type URLs of the parts of a fingerprint, in order. */
export const FINGERPRINT_TYPES: readonly string[] = TYPES.map((t) => t.type.typeUrl);
