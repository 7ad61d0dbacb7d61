import { join } from 'node:path';
import { CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE } from './cert-dir.js';
import { CERTIFICATE_PROVIDER_INSTANCE } from '../xds/generators/grpc/tls.js';
import { GRPC_SERVER_LISTENER_TEMPLATE } from '../xds/generators/grpc/names.js';

/**
 * The gRPC xDS bootstrap (gRFC A27, A29, A36) for a proxyless workload, as istio-agent writes it
 * (pkg/istio-agent/grpcxds/grpc_bootstrap.go), checked against what grpc-js-xds 1.14.1
 * requires (its XdsClient and XdsServer run against meshd in test/proxyless/):
 *
 * - xds_servers: one server, channel_creds `insecure` (grpc-js-xds supports only insecure and
 *   google_default), server_features xds_v3. The server is the agent's local xDS proxy on a Unix
 *   socket, which talks to meshd over mTLS (xds-proxy.ts).
 * - node: id and locality are required (`locality field missing in node element`); metadata
 *   GENERATOR=grpc selects meshd's gRPC generators, NAMESPACE and WORKLOAD_NAME tie the node to
 *   its WorkloadEntry.
 * - server_listener_resource_name_template: required by XdsServer.
 * - certificate_providers.default: file_watcher over the agent's three files; refresh_interval
 *   must be a string ("…s"), a number is refused.
 */
export interface GrpcBootstrapInput {
  /** `unix:///path` (the agent's socket) or `host:port`. */
  xdsServerUri: string;
  nodeId: string;
  namespace: string;
  workload: string;
  serviceAccount?: string;
  trustDomain?: string;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  labels?: Readonly<Record<string, string>>;
  instanceIp?: string;
  certDir: string;
  /** Seconds between re-reads of the certificate files. */
  refreshIntervalSeconds: number;
}

export function buildGrpcBootstrap(input: GrpcBootstrapInput): Record<string, unknown> {
  if (!Number.isInteger(input.refreshIntervalSeconds) || input.refreshIntervalSeconds < 1) {
    throw new Error(`refresh interval must be a whole number of seconds ≥ 1, got ${input.refreshIntervalSeconds}`);
  }
  const metadata: Record<string, unknown> = {
    GENERATOR: 'grpc',
    NAMESPACE: input.namespace,
    WORKLOAD_NAME: input.workload,
  };
  if (input.serviceAccount !== undefined) metadata.SERVICE_ACCOUNT = input.serviceAccount;
  if (input.trustDomain !== undefined) metadata.TRUST_DOMAIN = input.trustDomain;
  if (input.instanceIp !== undefined) metadata.INSTANCE_IPS = input.instanceIp;
  if (input.labels !== undefined && Object.keys(input.labels).length > 0) metadata.LABELS = { ...input.labels };
  return {
    xds_servers: [{ server_uri: input.xdsServerUri, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: input.nodeId, locality: input.locality ?? {}, metadata },
    server_listener_resource_name_template: GRPC_SERVER_LISTENER_TEMPLATE,
    certificate_providers: {
      [CERTIFICATE_PROVIDER_INSTANCE]: {
        plugin_name: 'file_watcher',
        config: {
          certificate_file: join(input.certDir, CERT_CHAIN_FILE),
          private_key_file: join(input.certDir, KEY_FILE),
          ca_certificate_file: join(input.certDir, ROOT_CERT_FILE),
          refresh_interval: `${input.refreshIntervalSeconds}s`,
        },
      },
    },
  };
}

/** The agent's default xDS socket for a certificate directory. */
export function defaultXdsSocket(certDir: string): string {
  return join(certDir, 'xds.sock');
}

/** `unix:///abs/path` for a socket path; host:port and unix: URIs are kept as given. */
export function xdsServerUri(address: string): string {
  if (address.startsWith('unix:')) return address;
  if (address.startsWith('/')) return `unix://${address}`;
  return address;
}
