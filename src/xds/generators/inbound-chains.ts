import type { MeshSettings } from '../../config/model.js';
import type { EffectiveMode } from '../../mesh/peer-authentication.js';
import type { Filter, FilterChain } from '../../envoy/messages.js';
import { inboundChainName } from './names.js';
import { DOWNSTREAM_ALPNS, ISTIO_MTLS_ALPNS } from './alpn.js';
import { downstreamTlsContext, tlsTransportSocket } from './tls-contexts.js';

/**
 * The filter chains of one inbound workload port for its effective mTLS mode, as istiod's
 * getFilterChainMatchOptions (pilot/pkg/networking/core/filterchain_options.go) builds them for
 * declared HTTP and TCP ports:
 *
 * | mode       | HTTP port                                  | TCP port                                                      |
 * |------------|--------------------------------------------|---------------------------------------------------------------|
 * | STRICT     | tls → HCM (TLS terminated)                 | tls → tcp_proxy (TLS terminated)                               |
 * | PERMISSIVE | tls + istio ALPNs → HCM; raw_buffer → HCM  | tls + istio ALPNs → tcp_proxy; tls → passthrough; raw_buffer   |
 * | DISABLE    | raw_buffer → HCM                           | raw_buffer → tcp_proxy                                         |
 *
 * So under STRICT a plaintext connection matches no chain and Envoy closes it (flag NR).
 *
 * Every chain matches `destination_port` = the workload port even though meshd binds one
 * listener per port: the chains are then valid unchanged inside a single virtualInbound
 * listener with original_dst, should transparent interception come (Istio's per-port chains
 * carry the same match).
 *
 * PERMISSIVE TCP keeps Istio's passthrough chain (TLS without an istio ALPN, not terminated,
 * forwarded to the app as is): PERMISSIVE promises that clients which worked before the mesh
 * keep working, and a client speaking the app's own TLS (a database or broker with TLS
 * enabled) would otherwise be reset. HTTP ports have no such chain, as in Istio.
 */
export interface InboundChainOptions {
  mesh: MeshSettings;
  /** Foreign trust domains whose workloads the mTLS chain accepts, each verified by its own bundle. */
  federatedTrustDomains?: readonly string[];
  workloadPort: number;
  mode: EffectiveMode;
  http: boolean;
  /**
   * The chain's network filters, ending in the terminal one: an HCM for HTTP ports; for TCP
   * ports any RBAC filters, then tcp_proxy. The passthrough chain of a PERMISSIVE TCP port gets
   * them too (Istio builds every chain of a port with the same network filters).
   */
  filters: readonly Filter[];
}

export function inboundFilterChains(o: InboundChainOptions): FilterChain[] {
  const port = { value: o.workloadPort };
  const mtls = (alpnMatch: readonly string[] | undefined): FilterChain => ({
    name: inboundChainName(o.workloadPort, 'mtls'),
    filter_chain_match: {
      destination_port: port,
      transport_protocol: 'tls',
      ...(alpnMatch !== undefined ? { application_protocols: [...alpnMatch] } : {}),
    },
    filters: [...o.filters],
    // HTTP chains advertise h2/http1.1 (Istio); TCP chains too (Istio's list minus istio-peer-exchange).
    transport_socket: tlsTransportSocket(downstreamTlsContext({ mesh: o.mesh, alpn: DOWNSTREAM_ALPNS, federatedTrustDomains: o.federatedTrustDomains ?? [] })),
  });
  const plaintext: FilterChain = {
    name: inboundChainName(o.workloadPort, 'plaintext'),
    filter_chain_match: { destination_port: port, transport_protocol: 'raw_buffer' },
    filters: [...o.filters],
  };

  switch (o.mode) {
    case 'STRICT':
      return [mtls(undefined)];
    case 'PERMISSIVE': {
      const chains = [mtls(ISTIO_MTLS_ALPNS)];
      if (!o.http) {
        chains.push({
          name: inboundChainName(o.workloadPort, 'tls-passthrough'),
          filter_chain_match: { destination_port: port, transport_protocol: 'tls' },
          filters: [...o.filters],
        });
      }
      chains.push(plaintext);
      return chains;
    }
    case 'DISABLE':
      return [plaintext];
  }
}

/** True when some chain needs the TLS inspector to set the transport protocol (Istio adds it only then). */
export function needsTlsInspector(chains: readonly FilterChain[]): boolean {
  return chains.some((c) => c.filter_chain_match?.transport_protocol === 'tls');
}
