import type { PortProtocol } from '../config/model.js';

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
