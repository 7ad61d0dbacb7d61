import type { MeshSettings, WorkloadEntry } from '../../config/model.js';
import { ExtensionName, ExtensionType } from '../../envoy/extension-types.js';
import type { ProtoJson } from '../../envoy/json-form.js';
import type { Bootstrap, Cluster, CommonTlsContext, ConfigSource, GrpcService, Listener, SdsSecretConfig } from '../../envoy/messages.js';
import { ALS_CLUSTER_NAME } from '../../telemetry/access-log-config.js';
import type { EndpointAddress } from './endpoint-address.js';
import { DEFAULT_DNS_DOMAIN } from '../../mesh/node-identity.js';
import { sidecarNode } from './sidecar-node.js';

/**
 * The Envoy bootstrap for one sidecar, as a proto3-JSON object (what Envoy reads from YAML).
 * Pure: every input is passed in. Shape after Istio's envoy_bootstrap.json, minus istio-agent:
 *
 * - `node`: id and metadata tie the proxy to its WorkloadEntry (sidecar-node.ts);
 * - `dynamic_resources`: ADS to the static `xds-grpc` cluster; LDS and CDS over ADS; listeners and
 *   clusters then fetch RDS, EDS and SDS (`default`, `ROOTCA`) over the same ADS stream;
 * - `xds-grpc`: HTTP/2 over TLS to meshd, trusting only meshd's roots (inline) and only meshd's
 *   SPIFFE ID; the bearer token goes in the gRPC stream's `initial_metadata` because this cluster
 *   cannot carry a client SVID: the SVID itself comes over ADS, and a static cluster cannot use
 *   SDS-over-ADS (envoyproxy/envoy#19618);
 * - `meshd-als`: the same TLS to meshd's access-log address, for the gRPC access logs the
 *   generated listeners send (src/telemetry/access-log-config.ts). meshd authenticates those
 *   streams, and the access-log GrpcService (generated, in LDS) carries no token, so this cluster
 *   presents the workload's SVID: secret `default`, fetched over a separate SDS stream on
 *   `xds-grpc` (with the token), the supported way for a static cluster (its SDS cluster is
 *   defined before it; SDS-over-ADS is what #19618 breaks);
 * - admin on loopback only (its /config_dump shows this file, token included);
 * - `prometheus_stats`, as istio-agent's bootstrap has it: a listener on 0.0.0.0:15090 that
 *   forwards exactly /stats/prometheus to admin, so Prometheus scrapes the sidecar without
 *   reaching the rest of admin (config_dump, quitquitquit). `statsPort` 0 leaves it out.
 */
export interface BootstrapInput {
  workload: WorkloadEntry;
  mesh: MeshSettings;
  /** meshd's ADS address as the sidecar reaches it; several replicas' addresses make one cluster of them all. */
  xds: EndpointAddress | readonly EndpointAddress[];
  /** Where access logs go; defaults to `xds`. */
  als?: EndpointAddress | readonly EndpointAddress[];
  /** Every root of meshd's trust bundle, PEM, concatenated (all of them during a root rotation). */
  rootsPem: string;
  /** The SPIFFE ID meshd's serving certificate carries (spiffe://<td>/ns/istio-system/sa/meshd). */
  controlPlaneSpiffeId: string;
  /** Bearer token sent as `authorization` on every ADS stream; absent: no credential is sent. */
  token?: string;
  adminPort: number;
  /** Port of the Prometheus stats listener on 0.0.0.0 (Istio: 15090); 0 or absent: none. */
  statsPort?: number;
  dnsDomain?: string;
}

/** Istio's port for a sidecar's Prometheus stats (the prometheus.io/port annotation it sets). */
export const PROMETHEUS_STATS_PORT = 15090;
export const PROMETHEUS_STATS_NAME = 'prometheus_stats';

export const XDS_CLUSTER_NAME = 'xds-grpc';
export const BOOTSTRAP_TYPE = 'envoy.config.bootstrap.v3.Bootstrap';

/** A bootstrap as Envoy reads it from YAML (proto3 JSON: "5s" durations, plain-JSON Structs). */
export type JsonBootstrap = ProtoJson<Bootstrap>;

export function buildBootstrap(input: BootstrapInput): JsonBootstrap {
  const node = sidecarNode(input.workload, input.mesh, input.dnsDomain ?? DEFAULT_DNS_DOMAIN);
  const adsService: ProtoJson<GrpcService> = { envoy_grpc: { cluster_name: XDS_CLUSTER_NAME } };
  if (input.token !== undefined) {
    adsService.initial_metadata = [{ key: 'authorization', value: `Bearer ${input.token}` }];
  }
  // initial_fetch_timeout 0s, as Istio's bootstrap: Envoy waits for meshd's first CDS/LDS instead
  // of giving up after 15 s and going "ready" with no listeners.
  const overAds: ProtoJson<ConfigSource> = { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: '0s' };
  return {
    node,
    dynamic_resources: {
      ads_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [adsService],
      },
      cds_config: overAds,
      lds_config: overAds,
    },
    static_resources: {
      ...(input.statsPort ? { listeners: [prometheusStatsListener(input.statsPort)] } : {}),
      clusters: [
        meshdCluster(XDS_CLUSTER_NAME, input.xds, directTls(input)),
        meshdCluster(ALS_CLUSTER_NAME, input.als ?? input.xds, directTls(input, workloadSvidOverSds(adsService))),
        ...(input.statsPort ? [adminCluster(PROMETHEUS_STATS_NAME, input.adminPort)] : []),
      ],
    },
    admin: loopbackAdmin(input.adminPort),
    layered_runtime: layeredRuntime(),
  };
}

export function loopbackAdmin(adminPort: number): JsonBootstrap['admin'] {
  return { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } };
}

export function layeredRuntime(): JsonBootstrap['layered_runtime'] {
  return {
    layers: [
      // Istio sets this too: without a global limit Envoy warns at start and accepts without bound.
      { name: 'global config', static_layer: { 'overload.global_downstream_max_connections': 2147483647 } },
      { name: 'admin', admin_layer: {} },
    ],
  };
}

/** 0.0.0.0:<port>, one route: the exact path /stats/prometheus to admin; anything else gets 404. */
export function prometheusStatsListener(port: number): ProtoJson<Listener> {
  return {
    name: PROMETHEUS_STATS_NAME,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
          stat_prefix: PROMETHEUS_STATS_NAME,
          codec_type: 'AUTO',
          route_config: {
            name: PROMETHEUS_STATS_NAME,
            virtual_hosts: [{
              name: PROMETHEUS_STATS_NAME,
              domains: ['*'],
              routes: [{ match: { path: '/stats/prometheus' }, route: { cluster: PROMETHEUS_STATS_NAME } }],
            }],
          },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
        },
      }],
    }],
  };
}

/** Envoy's own admin interface on loopback, as an upstream. */
export function adminCluster(name: string, adminPort: number): ProtoJson<Cluster> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '0.25s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } } }] }],
    },
  };
}

/**
 * The workload SVID (`default`, as the generated TLS contexts name it) over SDS on xds-grpc. A
 * bounded initial_fetch_timeout: if meshd cannot serve it, Envoy starts anyway and only the
 * access logs are refused, rather than the sidecar waiting for ever.
 */
function workloadSvidOverSds(grpcService: ProtoJson<GrpcService>): ProtoJson<SdsSecretConfig> {
  return {
    name: 'default',
    sds_config: {
      api_config_source: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [grpcService],
      },
      resource_api_version: 'V3',
      initial_fetch_timeout: '5s',
    },
  };
}

/** The TLS to meshd of a direct bootstrap: meshd's roots inline, presenting `clientSvid` when given. */
function directTls(input: BootstrapInput, clientSvid?: ProtoJson<SdsSecretConfig>): ProtoJson<CommonTlsContext> {
  return {
    ...(clientSvid ? { tls_certificate_sds_secret_configs: [clientSvid] } : {}),
    alpn_protocols: ['h2'],
    tls_params: tlsParams(input.mesh),
    validation_context: {
      trusted_ca: { inline_string: input.rootsPem },
      match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: input.controlPlaneSpiffeId } }],
    },
  };
}

export function tlsParams(mesh: MeshSettings): ProtoJson<CommonTlsContext>['tls_params'] {
  return {
    tls_minimum_protocol_version: mesh.minTlsVersion === 'TLSV1_3' ? 'TLSv1_3' : 'TLSv1_2',
    tls_maximum_protocol_version: 'TLSv1_3',
  };
}

/** One long-lived gRPC stream per proxy: lift Envoy's default 1024 limits as Istio does for xds-grpc. */
export function grpcCircuitBreakers(): ProtoJson<Cluster>['circuit_breakers'] {
  return {
    thresholds: (['DEFAULT', 'HIGH'] as const).map((priority) => ({
      priority, max_connections: 100000, max_pending_requests: 100000, max_requests: 100000,
    })),
  };
}

/** HTTP/2 for gRPC; its PINGs notice a dead peer (or NAT drop) long before TCP would. */
export function grpcProtocolOptions(): ProtoJson<Cluster>['typed_extension_protocol_options'] {
  return {
    [ExtensionName.HttpProtocolOptions]: {
      '@type': ExtensionType.HttpProtocolOptions,
      explicit_http_config: { http2_protocol_options: { connection_keepalive: { interval: '30s', timeout: '10s' } } },
    },
  };
}

/** A cluster to meshd (one address or several replicas): HTTP/2 (gRPC) over TLS with `commonTls`. */
export function meshdCluster(name: string, where: EndpointAddress | readonly EndpointAddress[], commonTls: ProtoJson<CommonTlsContext>): ProtoJson<Cluster> {
  const addresses: readonly EndpointAddress[] = Array.isArray(where) ? where : [where as EndpointAddress];
  const address = addresses[0]!;
  const cluster: ProtoJson<Cluster> = {
    name,
    // STATIC takes only IPs; STRICT_DNS resolves names (every address of each) and takes IPs too.
    type: addresses.every((a) => a.isIp) ? 'STATIC' : 'STRICT_DNS',
    connect_timeout: '1s',
    // With several replicas a stream that ends (a replica went away) is re-opened on a healthy
    // host: Envoy's gRPC client picks a host per stream, and a refused connect fails over.
    lb_policy: 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: addresses.map((a) => ({ endpoint: { address: { socket_address: { address: a.host, port_value: a.port } } } })) }],
    },
    circuit_breakers: grpcCircuitBreakers(),
    typed_extension_protocol_options: grpcProtocolOptions(),
    upstream_connection_options: { tcp_keepalive: { keepalive_time: 300 } },
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': ExtensionType.UpstreamTlsContext,
        // SNI: the DNS name dialled (as Envoy's auto_sni would send), or "meshd" (a DNS SAN of
        // meshd's serving certificate) when dialling an IP. Trust is decided by the SAN match.
        sni: address.isIp ? 'meshd' : address.host.replace(/\.$/, ''),
        common_tls_context: commonTls,
      },
    },
  };
  if (!address.isIp) cluster.dns_lookup_family = 'V4_PREFERRED';
  return cluster;
}
