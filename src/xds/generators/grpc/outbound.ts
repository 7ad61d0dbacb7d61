import { isIP } from 'node:net';
import { ExtensionName, ExtensionType } from '../../../envoy/extension-types.js';
import type { Cluster, ClusterLoadAssignment, Listener, Locality, RouteConfiguration } from '../../../envoy/messages.js';
import type { MeshIndex, ServiceTarget } from '../../../mesh/mesh-index.js';
import { endpointPort } from '../../../mesh/registry.js';
import { outboundClusterName } from '../names.js';
import { expandWithTrustDomains, serviceAccountOf, workloadSpiffeId } from '../../../mesh/spiffe-identity.js';
import { grpcInboundTls } from './inbound-mode.js';
import { routeConfigName, type TargetName } from './names.js';
import { grpcUpstreamTls } from './tls.js';

/**
 * What a proxyless gRPC client gets for the services it may call (visible by exportTo):
 * an API listener per `xds:///` target, an RDS route config, an EDS cluster and its endpoints
 * (pilot/pkg/networking/grpcgen: lds.go, rds.go, cds.go; gRFC A27 xDS-based global load balancing).
 *
 * TLS: Istio gives gRPC clients no auto mTLS (it cannot know whether the client uses xDS
 * credentials) and needs a DestinationRule. meshd has no DestinationRules; it sets the
 * UpstreamTlsContext exactly when the destination's gRPC inbound is mTLS for that port
 * (inbound-mode.ts, the same function the server listener uses), so client and server switch in
 * the same snapshot and a policy change never leaves a client speaking the wrong protocol.
 * gRPC cannot choose TLS per endpoint (no transport_socket_matches): when endpoints disagree,
 * the cluster uses mTLS (never downgraded by one plaintext endpoint) and leaves the endpoints
 * that would refuse it out of EDS.
 */
export interface GrpcTarget {
  target: ServiceTarget;
  clusterName: string;
  routeName: string;
}

/** A visible host and service port, or a reason it cannot be reached over gRPC xDS. */
function usable(target: ServiceTarget): boolean {
  return target.entry.resolution !== 'NONE' && !target.host.includes('*');
}

/** Every service port a proxy in `namespace` may call, by cluster name (oldest ServiceEntry wins a host). */
export function grpcTargets(index: MeshIndex, namespace: string): ReadonlyMap<string, GrpcTarget> {
  return index.cached(`grpc-targets:${namespace}`, () => {
    const out = new Map<string, GrpcTarget>();
    for (const target of index.visibleTargets(namespace).targets) {
      if (!usable(target)) continue;
      const clusterName = outboundClusterName(target.port.number, target.host);
      if (!out.has(clusterName)) out.set(clusterName, { target, clusterName, routeName: routeConfigName(target.host, target.port.number) });
    }
    return out;
  });
}

/** The target an `xds:///host[:port]` name means; a bare host only when its service has one port. */
export function resolveTarget(targets: ReadonlyMap<string, GrpcTarget>, name: TargetName): GrpcTarget | undefined {
  if (name.port !== undefined) return targets.get(outboundClusterName(name.port, name.host));
  const ports = [...targets.values()].filter((t) => t.target.host === name.host);
  return ports.length === 1 ? ports[0] : undefined;
}

/** Client listener names for every target: `host:port`, and `host` for single-port services. */
export function allTargetNames(targets: ReadonlyMap<string, GrpcTarget>): string[] {
  const byHost = new Map<string, number>();
  for (const t of targets.values()) byHost.set(t.target.host, (byHost.get(t.target.host) ?? 0) + 1);
  const names: string[] = [];
  for (const t of targets.values()) {
    names.push(t.routeName);
    if (byHost.get(t.target.host) === 1) names.push(t.target.host);
  }
  return names.sort();
}

export function grpcApiListener(index: MeshIndex, name: string, target: GrpcTarget): Listener {
  return index.cached(`grpc-lds-out:${name}:${target.clusterName}`, () => ({
    name,
    api_listener: {
      api_listener: {
        '@type': ExtensionType.HttpConnectionManager,
        stat_prefix: name, // required by Envoy's schema (min_len 1); gRPC ignores it
        rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: target.routeName },
        http_filters: [{ name: ExtensionName.Router, typed_config: { '@type': ExtensionType.Router } }],
      },
    },
  }));
}

/** Domains cover both authorities a client may use: `host` and `host:port` (else calls hang in resolution). */
export function grpcRouteConfig(index: MeshIndex, target: GrpcTarget): RouteConfiguration {
  return index.cached(`grpc-rds:${target.routeName}:${target.clusterName}`, () => {
    const { host, port } = target.target;
    return {
      name: target.routeName,
      virtual_hosts: [{
        name: target.routeName,
        domains: [host, `${host}:${port.number}`],
        routes: [{ match: { prefix: '' }, route: { cluster: target.clusterName } }],
      }],
    };
  });
}

export interface GrpcEndpoint {
  address: string;
  port: number;
  spiffeId: string;
  mtls: boolean;
  weight: number;
  locality?: string;
}

/** The endpoints of a target with the TLS each one's gRPC inbound requires. */
export function grpcEndpoints(index: MeshIndex, target: GrpcTarget): readonly GrpcEndpoint[] {
  const { entry, port } = target.target;
  return index.cached(`grpc-eps:${entry.meta.namespace}/${entry.meta.name}:${port.number}`, () => {
    const td = index.snapshot.mesh.trustDomain;
    const out: GrpcEndpoint[] = [];
    for (const e of index.workloadsOf(entry)) {
      if (isIP(e.spec.address) === 0) continue; // EDS takes IPs only (gRPC NACKs host names)
      const workloadPort = endpointPort(port, e.spec);
      const internal = entry.location === 'MESH_INTERNAL';
      const endpoint: GrpcEndpoint = {
        address: e.spec.address,
        port: workloadPort,
        spiffeId: workloadSpiffeId(td, e.namespace, serviceAccountOf(e.spec.serviceAccount)),
        mtls: internal && grpcInboundTls(index, e.namespace, e.spec.labels, workloadPort).mtls,
        weight: e.spec.weight !== undefined && e.spec.weight > 0 ? e.spec.weight : 1,
      };
      if (e.spec.locality) endpoint.locality = e.spec.locality;
      out.push(endpoint);
    }
    return out.sort((a, b) => (a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1));
  });
}

/** mTLS when any endpoint requires it. */
export function clusterUsesMtls(endpoints: readonly GrpcEndpoint[]): boolean {
  return endpoints.some((e) => e.mtls);
}

export function grpcCluster(index: MeshIndex, target: GrpcTarget): Cluster {
  return index.cached(`grpc-cds:${target.clusterName}:${target.target.entry.meta.namespace}/${target.target.entry.meta.name}`, () => {
    const endpoints = grpcEndpoints(index, target);
    const cluster: Cluster = {
      name: target.clusterName,
      type: 'EDS',
      lb_policy: 'ROUND_ROBIN',
      eds_cluster_config: { service_name: target.clusterName, eds_config: { ads: {}, resource_api_version: 'V3' } },
    };
    if (clusterUsesMtls(endpoints)) {
      const ids = [...new Set(endpoints.filter((e) => e.mtls).map((e) => e.spiffeId))].sort();
      // The ServiceEntry's subjectAltNames are accepted too, as for Envoy clusters (outbound-clusters.ts).
      const accepted = expandWithTrustDomains(ids, index.snapshot.mesh);
      for (const san of target.target.entry.subjectAltNames ?? []) if (!accepted.includes(san)) accepted.push(san);
      cluster.transport_socket = grpcUpstreamTls(accepted);
    }
    return cluster;
  });
}

function localityOf(l: string | undefined): Locality {
  const out: Locality = {};
  if (!l) return out;
  const [region, zone, subZone] = l.split('/');
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subZone) out.sub_zone = subZone;
  return out;
}

/**
 * EDS for a target. grpc-js-xds NACKs an endpoint group without `locality` and silently drops one
 * without `load_balancing_weight` ("priority policy has empty priority list"), so both are
 * always set (an empty locality when the WorkloadEntry names none).
 */
export function grpcClusterLoadAssignment(index: MeshIndex, target: GrpcTarget): ClusterLoadAssignment {
  return index.cached(`grpc-eds:${target.clusterName}:${target.target.entry.meta.namespace}/${target.target.entry.meta.name}`, () => {
    const all = grpcEndpoints(index, target);
    const mtls = clusterUsesMtls(all);
    const endpoints = all.filter((e) => e.mtls === mtls);
    const groups = new Map<string, GrpcEndpoint[]>();
    for (const e of endpoints) {
      const k = e.locality ?? '';
      groups.set(k, [...(groups.get(k) ?? []), e]);
    }
    return {
      cluster_name: target.clusterName,
      endpoints: [...groups.keys()].sort().map((k) => {
        const list = groups.get(k)!;
        return {
          locality: localityOf(k),
          load_balancing_weight: { value: list.reduce((s, e) => s + e.weight, 0) },
          lb_endpoints: list.map((e) => ({
            endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
            load_balancing_weight: { value: e.weight },
          })),
        };
      }),
    };
  });
}
