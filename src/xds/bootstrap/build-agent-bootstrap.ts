import type { MeshSettings, WorkloadEntry } from '../../config/model.js';
import type { ProtoJson } from '../../envoy/json-form.js';
import type { Cluster, CommonTlsContext, ConfigSource, SdsSecretConfig } from '../../envoy/messages.js';
import { DEFAULT_DNS_DOMAIN } from '../../mesh/node-identity.js';
import { DEFAULT_SECRET, ROOTCA_SECRET } from '../../svid/secret-names.js';
import { ALS_CLUSTER_NAME } from '../../telemetry/access-log-config.js';
import { SDS_GRPC_CLUSTER, SDS_SOURCE_AGENT, SDS_SOURCE_METADATA } from '../generators/secret-source.js';
import {
  adminCluster, grpcCircuitBreakers, grpcProtocolOptions, layeredRuntime, loopbackAdmin, meshdCluster,
  prometheusStatsListener, PROMETHEUS_STATS_NAME, tlsParams, XDS_CLUSTER_NAME, type JsonBootstrap,
} from './build-bootstrap.js';
import type { EndpointAddress } from './endpoint-address.js';
import { sidecarNode } from './sidecar-node.js';

/**
 * The Envoy bootstrap of a sidecar behind `meshd agent`: istio-agent's layout
 * (tools/packaging/common/envoy_bootstrap.json), with the agent's sockets.
 *
 * - `xds-grpc`: ADS over the agent's xDS proxy, a Unix socket (`pipe`), plaintext: the agent
 *   opens the stream to meshd over mTLS with the workload's SVID, so Envoy holds no token.
 * - `sds-grpc`: the agent's SDS socket. The generated listeners and clusters name `default` and
 *   `ROOTCA` on it (node metadata MESHD_SDS_SOURCE=agent tells meshd to), so the key the agent made
 *   goes from the agent's memory to Envoy's and nowhere else.
 * - `meshd-als`: the gRPC access logs the generated listeners send. They go to meshd's address
 *   over mTLS, presenting `default` and checking meshd's SPIFFE ID against `ROOTCA`, both from
 *   the agent: the one address of meshd in the file, and no credential with it.
 * - admin on loopback and Istio's prometheus_stats listener, as in the direct bootstrap.
 * Nothing secret is in the file: it may be world-readable; the sockets are what is guarded (0600).
 */
export interface AgentBootstrapInput {
  workload: WorkloadEntry;
  mesh: MeshSettings;
  /** Absolute path of the agent's xDS proxy socket. */
  xdsSocket: string;
  /** Absolute path of the agent's SDS socket. */
  sdsSocket: string;
  /** Where access logs go (meshd's TLS gRPC address, or the mesh config's access log service). */
  als: EndpointAddress | readonly EndpointAddress[];
  /** The SPIFFE ID meshd's serving certificate carries. */
  controlPlaneSpiffeId: string;
  adminPort: number;
  statsPort?: number;
  dnsDomain?: string;
}

export function buildAgentBootstrap(input: AgentBootstrapInput): JsonBootstrap {
  const node = sidecarNode(input.workload, input.mesh, input.dnsDomain ?? DEFAULT_DNS_DOMAIN);
  node.metadata[SDS_SOURCE_METADATA] = SDS_SOURCE_AGENT;
  // initial_fetch_timeout 0s, as Istio's bootstrap: Envoy waits for the first CDS/LDS.
  const overAds: ProtoJson<ConfigSource> = { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: '0s' };
  return {
    node,
    dynamic_resources: {
      ads_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER_NAME } }],
      },
      cds_config: overAds,
      lds_config: overAds,
    },
    static_resources: {
      ...(input.statsPort ? { listeners: [prometheusStatsListener(input.statsPort)] } : {}),
      // sds-grpc before meshd-als: a static cluster's SDS cluster must be defined ahead of it.
      clusters: [
        socketCluster(XDS_CLUSTER_NAME, input.xdsSocket),
        socketCluster(SDS_GRPC_CLUSTER, input.sdsSocket),
        meshdCluster(ALS_CLUSTER_NAME, input.als, alsTls(input)),
        ...(input.statsPort ? [adminCluster(PROMETHEUS_STATS_NAME, input.adminPort)] : []),
      ],
    },
    admin: loopbackAdmin(input.adminPort),
    layered_runtime: layeredRuntime(),
  };
}

/** gRPC (HTTP/2) to one of the agent's Unix sockets. */
function socketCluster(name: string, path: string): ProtoJson<Cluster> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    lb_policy: 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path } } } }] }],
    },
    circuit_breakers: grpcCircuitBreakers(),
    typed_extension_protocol_options: grpcProtocolOptions(),
  };
}

/**
 * A secret from the agent for a static cluster. A bounded initial_fetch_timeout, as in the
 * direct bootstrap: an agent that cannot answer yet costs the access logs, not Envoy's start.
 */
function fromAgent(name: string): ProtoJson<SdsSecretConfig> {
  return {
    name,
    sds_config: {
      api_config_source: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [{ envoy_grpc: { cluster_name: SDS_GRPC_CLUSTER } }],
      },
      resource_api_version: 'V3',
      initial_fetch_timeout: '5s',
    },
  };
}

function alsTls(input: AgentBootstrapInput): ProtoJson<CommonTlsContext> {
  return {
    tls_certificate_sds_secret_configs: [fromAgent(DEFAULT_SECRET)],
    alpn_protocols: ['h2'],
    tls_params: tlsParams(input.mesh),
    combined_validation_context: {
      default_validation_context: {
        match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: input.controlPlaneSpiffeId } }],
      },
      validation_context_sds_secret_config: fromAgent(ROOTCA_SECRET),
    },
  };
}
