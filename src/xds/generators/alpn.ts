import type { PortProtocol } from '../../config/model.js';
import { isHttp2Protocol } from '../../mesh/protocols.js';

/**
 * ALPN values meshd's inbound TLS chains match: Istio's allIstioMtlsALPNs
 * (pilot/pkg/networking/core/listener.go) minus `istio-peer-exchange`. That one announces Istio's
 * metadata-exchange framing, which stock Envoy does not speak, so meshd neither offers nor
 * matches it.
 */
export const ISTIO_MTLS_ALPNS: readonly string[] = ['istio', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];

/**
 * What a meshd client offers upstream over auto mTLS: Istio's with PILOT_DISABLE_MX_ALPN
 * (pilot/pkg/networking/core/cluster_tls.go; util.ALPNInMesh / ALPNInMeshH2).
 */
export function upstreamMtlsAlpns(p: PortProtocol): string[] {
  return isHttp2Protocol(p) ? ['istio', 'h2'] : ['istio'];
}

/**
 * What inbound TLS chains advertise: h2 and http/1.1, never an `istio*` value, which "would
 * interfere with negotiation of the underlying protocol, e.g. HTTP/2"
 * (pilot/pkg/security/authn/utils/utils.go BuildInboundTLS; `istio*` values appear only in the
 * filter chain match).
 */
export const DOWNSTREAM_ALPNS: readonly string[] = ['h2', 'http/1.1'];
