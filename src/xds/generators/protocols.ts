import type { PortProtocol } from '../../config/model.js';

/**
 * Port protocol classes, as istiod derives them from the declared protocol
 * (pkg/config/protocol/instance.go IsHTTP / IsHTTP2).
 *
 * meshd does not sniff protocols: UNKNOWN (an undeclared port) is served as TCP, where istiod
 * would build its five "Auto" chains with http_inspector. Declare HTTP ports to get L7.
 * HTTPS and TLS carry the app's own TLS and are TCP to the mesh, as in Istio.
 */
export function isHttpProtocol(p: PortProtocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB';
}

/** Upstream HTTP/2 (and ALPN h2 on auto mTLS) for these, as Istio's IsHTTP2. */
export function isHttp2Protocol(p: PortProtocol): boolean {
  return p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB';
}

/**
 * ALPN values meshd's inbound TLS chains match (Istio's allIstioMtlsALPNs minus
 * `istio-peer-exchange`): listing that one would promise the metadata-exchange framing that
 * stock Envoy does not speak (istio.md §2.2), so meshd neither offers nor matches it.
 */
export const ISTIO_MTLS_ALPNS: readonly string[] = ['istio', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];

/** What a meshd client offers upstream over auto mTLS (Istio with PILOT_DISABLE_MX_ALPN). */
export function upstreamMtlsAlpns(p: PortProtocol): string[] {
  return isHttp2Protocol(p) ? ['istio', 'h2'] : ['istio'];
}

/** What inbound TLS chains advertise: never `istio*` (it would disturb negotiation; istio.md §1.5). */
export const DOWNSTREAM_ALPNS: readonly string[] = ['h2', 'http/1.1'];
