import { isIP } from 'node:net';
import type { Cluster, ClusterLoadAssignment, TransportSocketMatch } from '../../envoy/messages.js';
import { stringStruct } from '../../envoy/struct.js';
import { clusterLoadAssignment, localityEndpoints, serviceEndpoints, type ServiceEndpoint } from './endpoints.js';
import { upstreamProtocolOptions } from './http-options.js';
import { CONNECT_TIMEOUT } from './inbound.js';
import type { MeshIndex, ServiceTarget } from '../../mesh/mesh-index.js';
import { outboundClusterName, outboundSni } from './names.js';
import { expandWithTrustDomains, namesForeignTrustDomain, workloadSpiffeId } from '../../mesh/spiffe-identity.js';
import { upstreamMtlsAlpns } from './alpn.js';
import { rawBufferTransportSocket, tlsTransportSocket, upstreamTlsContext } from './tls-contexts.js';
import { userTransportSocket } from './cluster-tls.js';
import { clientTlsForPort, destinationRuleFor, indexDestinationRules, type ConsolidatedDestinationRule, type DestinationRuleIndex } from '../../mesh/destination-rule.js';

/**
 * Outbound clusters, one per service host and port, named `outbound|<port>||<host>`.
 *
 * - resolution STATIC: type EDS over ADS; endpoints from the WorkloadEntries (endpoints.ts).
 * - resolution DNS / DNS_ROUND_ROBIN: STRICT_DNS / LOGICAL_DNS with the endpoints (or the host
 *   itself) inline, as Istio builds them.
 * - resolution NONE: needs original_dst (transparent interception), which the loopback
 *   deployment model does not have: no cluster, and a warning.
 *
 * Auto mTLS exactly as Istio (pilot/pkg/networking/core/cluster_tls.go buildUpstreamTLSSettings,
 * pilot/pkg/xds/endpoints/mtls_checker.go): when meshConfig.enableAutoMtls is on, the service
 * is MESH_INTERNAL and its namespace's (else the mesh's) mode is not DISABLE, the cluster gets
 * transport_socket_matches: `tlsMode-istio` (endpoints whose metadata says tlsMode=istio) →
 * UpstreamTlsContext, `tlsMode-disabled` (everything else) → raw_buffer. The TLS context pins
 * the exact SPIFFE IDs of the service's accounts, expanded with the trust-domain aliases, and
 * sends SNI `outbound_.<port>_._.<host>`.
 *
 * A DestinationRule's `tls` for the port (trafficPolicy.tls, or its portLevelSettings entry)
 * replaces auto mTLS with the transport socket it asks for (cluster-tls.ts). The rule is the
 * one a client in the proxy's namespace selects (src/mesh/destination-rule.ts); rules with a
 * workloadSelector are left to per-workload clusters, which sidecars do not get yet.
 */

export interface AutoMtlsDecision {
  enabled: boolean;
  reason: string;
}

export function autoMtlsFor(index: MeshIndex, target: ServiceTarget): AutoMtlsDecision {
  const { entry } = target;
  if (!index.snapshot.mesh.enableAutoMtls) return { enabled: false, reason: 'meshConfig.enableAutoMtls is false' };
  if (entry.location === 'MESH_EXTERNAL') return { enabled: false, reason: `ServiceEntry ${entry.meta.namespace}/${entry.meta.name} is MESH_EXTERNAL` };
  const ns = index.namespaceMtls(entry.meta.namespace);
  const by = ns.decidedBy ?? 'default PERMISSIVE';
  if (ns.mode === 'DISABLE') {
    return { enabled: false, reason: `namespace ${entry.meta.namespace} is DISABLE (${by}), so clients do not attempt mTLS` };
  }
  return { enabled: true, reason: `auto mTLS on; namespace ${entry.meta.namespace} is ${ns.mode} (${by})` };
}

/**
 * The identities the service's servers may present: its sidecar endpoints' accounts, and the
 * ServiceEntry's subjectAltNames (Istio adds them to the service's accounts: pilot/pkg/
 * serviceregistry/serviceentry/conversion.go convertServices), e.g. the SPIFFE IDs of a service
 * of another, federated mesh.
 */
export function serverIdentities(index: MeshIndex, target: ServiceTarget, endpoints: readonly ServiceEndpoint[]): string[] {
  const td = index.snapshot.mesh.trustDomain;
  const ids = [...new Set(endpoints.filter((e) => e.sidecar && e.knownIdentity).map((e) => workloadSpiffeId(td, e.namespace, e.serviceAccount)))].sort();
  const expanded = expandWithTrustDomains(ids, index.snapshot.mesh);
  for (const san of target.entry.subjectAltNames ?? []) if (!expanded.includes(san)) expanded.push(san);
  return expanded;
}

function transportSocketMatches(index: MeshIndex, target: ServiceTarget, endpoints: readonly ServiceEndpoint[]): TransportSocketMatch[] {
  const ids = serverIdentities(index, target, endpoints);
  const tls = upstreamTlsContext({
    serverIdentities: ids,
    federated: namesForeignTrustDomain(ids, index.snapshot.mesh),
    sni: outboundSni(target.port.number, target.host),
    alpn: upstreamMtlsAlpns(target.port.protocol),
  });
  return [
    { name: 'tlsMode-istio', match: stringStruct({ tlsMode: 'istio' }), transport_socket: tlsTransportSocket(tls) },
    { name: 'tlsMode-disabled', match: {}, transport_socket: rawBufferTransportSocket() },
  ];
}

export interface OutboundCluster {
  cluster: Cluster;
  /** Present for EDS clusters: the resource EDS serves under the cluster's name. */
  endpoints?: ClusterLoadAssignment;
  warnings: string[];
}

function dnsEndpoints(target: ServiceTarget, endpoints: readonly ServiceEndpoint[]): ServiceEndpoint[] {
  if (endpoints.length > 0) return [...endpoints];
  if (target.host.includes('*')) return [];
  return [{
    address: target.host,
    port: target.port.number,
    namespace: target.entry.meta.namespace,
    serviceAccount: 'default',
    name: target.host,
    weight: 1,
    sidecar: false,
    knownIdentity: false,
    mtls: false,
    mtlsReason: 'resolved by DNS from the host name; no sidecar known',
  }];
}

function destinationRules(index: MeshIndex): DestinationRuleIndex {
  return index.cached('dr-index', () => indexDestinationRules(index.snapshot.destinationRules, index.snapshot.mesh.rootNamespace));
}

/** The DestinationRule (without workloadSelector) clients in `namespace` use for a service host. */
export function namespaceDestinationRule(index: MeshIndex, namespace: string, target: ServiceTarget): ConsolidatedDestinationRule | undefined {
  const rule = destinationRuleFor(destinationRules(index), { namespace, labels: {} }, { hostname: target.host, namespace: target.entry.meta.namespace });
  return rule?.workloadSelector === undefined ? rule : undefined;
}

function ruleKey(rule: ConsolidatedDestinationRule): string {
  return `${rule.host}|${rule.from.map((r) => `${r.meta.namespace}/${r.meta.name}`).join(',')}`;
}

/**
 * The cluster (and its EDS resource) for one service port as clients in `clientNamespace` see
 * it, or a reason why there is none. Shared by every namespace whose clients select no
 * DestinationRule for it.
 */
export function outboundCluster(index: MeshIndex, target: ServiceTarget, clientNamespace: string): OutboundCluster | { skipped: string } {
  const { entry, host, port } = target;
  const rule = namespaceDestinationRule(index, clientNamespace, target);
  const userTls = clientTlsForPort(rule, port.number).tls;
  const key = `out-c:${entry.meta.namespace}/${entry.meta.name}:${host}:${port.number}${userTls === undefined ? '' : `:dr:${ruleKey(rule!)}`}`;
  return index.cached(key, () => {
    const name = outboundClusterName(port.number, host);
    if (entry.resolution === 'NONE') {
      return {
        skipped: `ServiceEntry ${entry.meta.namespace}/${entry.meta.name} host ${host}: resolution NONE needs transparent interception (original_dst); ` +
          'use resolution STATIC with WorkloadEntries, or DNS',
      };
    }
    const endpoints = serviceEndpoints(index, target);
    const auto = autoMtlsFor(index, target);
    const options = upstreamProtocolOptions(port.protocol);
    const cluster: Cluster = { name, type: 'EDS', connect_timeout: CONNECT_TIMEOUT };
    let eds: ClusterLoadAssignment | undefined;
    const warnings: string[] = [];
    if (entry.resolution === 'STATIC') {
      cluster.eds_cluster_config = { service_name: name, eds_config: { ads: {}, resource_api_version: 'V3' } };
      eds = clusterLoadAssignment(name, endpoints);
      for (const e of endpoints) {
        if (isIP(e.address) === 0) {
          warnings.push(`${name}: endpoint address "${e.address}" is not an IP, which resolution STATIC requires; it is left out`);
        }
      }
    } else {
      let list = dnsEndpoints(target, endpoints);
      // LOGICAL_DNS takes exactly one endpoint (Envoy rejects more).
      if (entry.resolution === 'DNS_ROUND_ROBIN') list = list.slice(0, 1);
      cluster.type = entry.resolution === 'DNS' ? 'STRICT_DNS' : 'LOGICAL_DNS';
      cluster.dns_lookup_family = 'V4_ONLY';
      // DNS clusters take host names in socket_address, so these skip EDS's IP-only filter.
      cluster.load_assignment = { cluster_name: name, endpoints: localityEndpoints(list) };
    }
    if (userTls !== undefined) {
      const socket = userTransportSocket({
        tls: userTls,
        protocol: port.protocol,
        serverIdentities: serverIdentities(index, target, endpoints),
        meshSni: outboundSni(port.number, host),
        mesh: index.snapshot.mesh,
      });
      // Validation already warned about what cannot be applied (credentialName).
      if (socket !== undefined) cluster.transport_socket = socket;
    } else if (auto.enabled) {
      cluster.transport_socket_matches = transportSocketMatches(index, target, endpoints);
    }
    if (options !== undefined) cluster.typed_extension_protocol_options = options;
    return eds === undefined ? { cluster, warnings } : { cluster, endpoints: eds, warnings };
  });
}
