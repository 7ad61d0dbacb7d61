import { isIP } from 'node:net';
import type { MeshSettings, WorkloadEntry } from '../../config/model.js';
import type { EffectiveMode } from '../../mesh/peer-authentication.js';
import { httpAccessLogs, noFilterChainAccessLogs } from './access-log.js';
import { ExtensionName, ExtensionType } from '../../envoy/extension-types.js';
import type { Cluster, Duration, Filter, HttpFilter, Listener, ListenerFilter } from '../../envoy/messages.js';
import { upstreamProtocolOptions, routerFilter } from './http-options.js';
import { inboundFilterChains, needsTlsInspector } from './inbound-chains.js';
import { inboundAuthz, type InboundAuthz } from './inbound-authz.js';
import type { InboundPort, MeshIndex } from '../../mesh/mesh-index.js';
import { inboundClusterName, listenerName } from './names.js';
import { tcpProxyFilter } from './tcp-proxy.js';

/**
 * Inbound side of a sidecar in meshd's deployment model (docs/deployment-model.md): Envoy
 * binds each mesh port of the workload on the workload's address and forwards to the app on
 * 127.0.0.1 at the same port, so the app listens on loopback only and nothing reaches it
 * around the sidecar.
 */

/** The loopback address the app listens on; the inbound clusters point here. */
export const APP_LOOPBACK = '127.0.0.1';

/** Istio's default connect timeout (meshConfig.connectTimeout, 10s). */
export const CONNECT_TIMEOUT: Duration = { seconds: 10 };

export interface InboundResources {
  listeners: Listener[];
  clusters: Cluster[];
  warnings: string[];
}

/** Why Envoy cannot bind this workload's address, or undefined when it can. */
export function unbindableAddress(address: string): string | undefined {
  if (isIP(address) === 0) return `address "${address}" is not an IP address Envoy can bind`;
  if (address === APP_LOOPBACK) {
    return `address ${APP_LOOPBACK} is where the app listens; give the workload its own address (e.g. 127.0.0.2 on one host)`;
  }
  return undefined;
}

function inboundCluster(port: InboundPort): Cluster {
  const name = inboundClusterName(port.workloadPort);
  const options = upstreamProtocolOptions(port.protocol);
  return {
    name,
    type: 'STATIC',
    connect_timeout: CONNECT_TIMEOUT,
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: [{
          endpoint: { address: { socket_address: { address: APP_LOOPBACK, port_value: port.workloadPort } } },
          load_balancing_weight: { value: 1 },
        }],
        load_balancing_weight: { value: 1 },
      }],
    },
    ...(options !== undefined ? { typed_extension_protocol_options: options } : {}),
  };
}

function inboundHcm(address: string, port: InboundPort, rbac: readonly HttpFilter[]): Filter {
  const cluster = inboundClusterName(port.workloadPort);
  return {
    name: ExtensionName.HttpConnectionManager,
    typed_config: {
      '@type': ExtensionType.HttpConnectionManager,
      stat_prefix: `inbound_${address}_${port.workloadPort}`,
      codec_type: 'AUTO',
      // Inbound routes are inline, not RDS, as Istio builds them.
      route_config: {
        name: cluster,
        virtual_hosts: [{
          name: `inbound|http|${port.workloadPort}`,
          domains: ['*'],
          routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: { seconds: 0 } } }],
        }],
        validate_clusters: { value: false },
      },
      http_filters: [...rbac, routerFilter()],
      use_remote_address: { value: false },
      // The app learns the caller's SPIFFE ID from x-forwarded-client-cert (Istio's inbound defaults).
      forward_client_cert_details: 'APPEND_FORWARD',
      set_current_client_cert_details: { subject: { value: true }, uri: true, dns: true },
      access_log: httpAccessLogs('inbound'),
    },
  };
}

function tlsInspector(): ListenerFilter {
  // Istio reads only the first 512 bytes for the ClientHello's SNI/ALPN (Envoy grows it if needed).
  return { name: ExtensionName.TlsInspector, typed_config: { '@type': ExtensionType.TlsInspector, initial_read_buffer_size: { value: 512 } } };
}

/**
 * One inbound port's listener. `authz` adds the workload's RBAC filters to every chain;
 * `federatedTrustDomains` are the foreign trust domains whose workloads the mTLS chains accept too.
 */
export function inboundListener(
  mesh: MeshSettings, address: string, port: InboundPort, mode: EffectiveMode, authz?: InboundAuthz, federatedTrustDomains: readonly string[] = [],
): Listener {
  const filters: Filter[] = port.http
    ? [inboundHcm(address, port, authz?.http ?? [])]
    : [...(authz?.network ?? []), tcpProxyFilter(inboundClusterName(port.workloadPort), 'inbound')];
  const chains = inboundFilterChains({
    mesh,
    federatedTrustDomains,
    workloadPort: port.workloadPort,
    mode,
    http: port.http,
    filters,
  });
  return {
    name: listenerName(address, port.workloadPort),
    address: { socket_address: { address, port_value: port.workloadPort } },
    traffic_direction: 'INBOUND',
    ...(needsTlsInspector(chains) ? { listener_filters: [tlsInspector()] } : {}),
    // Istio: protocolDetectionTimeout 0s (no timeout) and continue on timeout.
    listener_filters_timeout: { seconds: 0 },
    continue_on_listener_filters_timeout: true,
    filter_chains: chains,
    access_log: noFilterChainAccessLogs('inbound'),
  };
}

/** Listeners and clusters of a workload's own ports. */
export function buildInbound(index: MeshIndex, workload: WorkloadEntry): InboundResources {
  const { ports, warnings: portWarnings } = index.inboundPorts(workload);
  const warnings = [...portWarnings];
  const address = workload.spec.address;
  const problem = unbindableAddress(address);
  if (problem !== undefined && ports.length > 0) {
    warnings.push(`WorkloadEntry ${workload.meta.namespace}/${workload.meta.name}: ${problem}; no inbound listeners`);
    return { listeners: [], clusters: [], warnings };
  }
  const listeners: Listener[] = [];
  const clusters: Cluster[] = [];
  const mesh = index.snapshot.mesh;
  const authz = ports.length > 0 ? inboundAuthz(index, workload) : undefined;
  if (authz !== undefined) warnings.push(...authz.warnings);
  // Without policies the listener is shared by every workload with the same address and port shape.
  const authzKey = authz === undefined ? '' : `:authz:${workload.meta.namespace}/${workload.meta.name}`;
  const federated = index.snapshot.federatedTrustDomains.map((f) => f.trustDomain);
  for (const port of ports) {
    const { mode } = index.workloadPortMtls(workload, port.workloadPort);
    const key = `in-l:${address}:${port.workloadPort}:${port.protocol}:${mode}${authzKey}`;
    listeners.push(index.cached(key, () => inboundListener(mesh, address, port, mode, authz, federated)));
    clusters.push(index.cached(`in-c:${port.workloadPort}:${port.protocol}`, () => inboundCluster(port)));
  }
  return { listeners, clusters, warnings };
}
