import { isIP } from 'node:net';
import type { ClusterLoadAssignment, LbEndpoint, Locality, LocalityLbEndpoints } from '../../envoy/messages.js';
import { stringStruct } from '../../envoy/struct.js';
import type { MeshIndex, ServiceTarget } from '../../mesh/mesh-index.js';
import { endpointPort, type ServiceEndpoint as RegistryEndpoint } from '../../mesh/registry.js';
import { serviceAccountOf } from '../../mesh/spiffe-identity.js';
import { hasMeshSidecar } from '../../mesh/sidecar-marker.js';

/**
 * The endpoints behind a service port, from the WorkloadEntries its ServiceEntry selects and
 * its inline `endpoints`, with Istio's per-endpoint auto mTLS decision
 * (pilot/pkg/xds/endpoints/mtls_checker.go): an endpoint is marked `tlsMode: istio` only when it has a sidecar (see
 * sidecar-marker.ts) and its own effective mode for that port (workload- and port-level
 * PeerAuthentication included) is not DISABLE. Clients then pick the mTLS transport socket for
 * marked endpoints and plaintext for the rest.
 */

/** Metadata key Envoy reads transport_socket_matches against. */
export const TRANSPORT_SOCKET_MATCH_KEY = 'envoy.transport_socket_match';

export interface ServiceEndpoint {
  address: string;
  port: number;
  namespace: string;
  serviceAccount: string;
  /** WorkloadEntry name; undefined for an inline ServiceEntry endpoint. */
  workload?: string;
  /** The registry's name: the WorkloadEntry name or `<serviceentry>/endpoints[i]`. */
  name: string;
  locality?: string;
  weight: number;
  /** Runs a sidecar (sidecar-marker.ts): its SPIFFE ID is one clients accept for the service. */
  sidecar: boolean;
  /**
   * Whether its SPIFFE ID is known: a WorkloadEntry's (one without a serviceAccount runs as
   * `default`, as a pod does), or an inline endpoint's that names its serviceAccount. An inline
   * endpoint without one adds no server identity, as Istio's convertEndpoint gives it none
   * (pilot/pkg/serviceregistry/serviceentry/conversion.go): `default` of this mesh is no proof
   * of who answers at an address outside it.
   */
  knownIdentity: boolean;
  mtls: boolean;
  /** Why auto mTLS does or does not apply, for `meshd check`. */
  mtlsReason: string;
}

function endpointOf(index: MeshIndex, e: RegistryEndpoint, annotations: Readonly<Record<string, string>>, port: number): ServiceEndpoint {
  const marker = hasMeshSidecar(e.spec, annotations);
  const decision = index.portMtls(e.namespace, e.spec.labels, port);
  const by = decision.decidedBy ?? 'default PERMISSIVE, no PeerAuthentication applies';
  const mtls = marker.sidecar && decision.mode !== 'DISABLE';
  const mtlsReason = !marker.sidecar
    ? `no sidecar (${marker.reason})`
    : decision.mode === 'DISABLE'
      ? `sidecar (${marker.reason}) but its mode for port ${port} is DISABLE (${by})`
      : `sidecar (${marker.reason}) and its mode for port ${port} is ${decision.mode} (${by})`;
  const out: ServiceEndpoint = {
    address: e.spec.address,
    port,
    namespace: e.namespace,
    serviceAccount: serviceAccountOf(e.spec.serviceAccount),
    name: e.name,
    weight: e.spec.weight !== undefined && e.spec.weight > 0 ? e.spec.weight : 1,
    sidecar: marker.sidecar,
    knownIdentity: e.workloadEntry !== undefined || (e.spec.serviceAccount !== undefined && e.spec.serviceAccount !== ''),
    mtls,
    mtlsReason,
  };
  if (e.workloadEntry !== undefined) out.workload = e.workloadEntry.meta.name;
  if (e.spec.locality !== undefined && e.spec.locality !== '') out.locality = e.spec.locality;
  return out;
}

/** Every endpoint of a ServiceEntry port, sorted by address and port so the result is stable. */
export function serviceEndpoints(index: MeshIndex, target: ServiceTarget): readonly ServiceEndpoint[] {
  const { entry, port } = target;
  return index.cached(`eps:${entry.meta.namespace}/${entry.meta.name}:${port.number}`, () => {
    const out: ServiceEndpoint[] = [];
    for (const e of index.workloadsOf(entry)) {
      if (e.spec.address === '') continue;
      out.push(endpointOf(index, e, e.workloadEntry?.meta.annotations ?? {}, endpointPort(port, e.spec)));
    }
    return out.sort((a, b) => (a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1));
  });
}

function locality(l: string | undefined): Locality | undefined {
  if (l === undefined) return undefined;
  // Istio's form: region/zone/subzone.
  const [region, zone, subZone] = l.split('/');
  const out: Locality = {};
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subZone) out.sub_zone = subZone;
  return out;
}

function lbEndpoint(e: ServiceEndpoint): LbEndpoint {
  const out: LbEndpoint = {
    endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
    load_balancing_weight: { value: e.weight },
  };
  if (e.mtls) out.metadata = { filter_metadata: { [TRANSPORT_SOCKET_MATCH_KEY]: stringStruct({ tlsMode: 'istio' }) } };
  return out;
}

/** Groups endpoints by locality (sorted), each locality weighted by the sum of its endpoints. */
export function localityEndpoints(endpoints: readonly ServiceEndpoint[]): LocalityLbEndpoints[] {
  const groups = new Map<string, ServiceEndpoint[]>();
  for (const e of endpoints) {
    const key = e.locality ?? '';
    const list = groups.get(key) ?? [];
    list.push(e);
    groups.set(key, list);
  }
  return [...groups.keys()].sort().map((key) => {
    const list = groups.get(key)!;
    const group: LocalityLbEndpoints = {
      lb_endpoints: list.map(lbEndpoint),
      load_balancing_weight: { value: list.reduce((sum, e) => sum + e.weight, 0) },
    };
    const loc = locality(key === '' ? undefined : key);
    if (loc !== undefined) group.locality = loc;
    return group;
  });
}

/** The EDS resource of an EDS cluster. Endpoints whose address is not an IP cannot go over EDS. */
export function clusterLoadAssignment(clusterName: string, endpoints: readonly ServiceEndpoint[]): ClusterLoadAssignment {
  return { cluster_name: clusterName, endpoints: localityEndpoints(endpoints.filter((e) => isIP(e.address) !== 0)) };
}
