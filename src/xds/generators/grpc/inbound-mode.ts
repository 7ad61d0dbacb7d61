import type { EffectiveMode } from '../../../mesh/peer-authentication.js';
import type { MeshIndex } from '../../../mesh/mesh-index.js';
import { ISTIO_TLS_MODE_LABEL } from '../../../mesh/sidecar-marker.js';

/**
 * Whether a proxyless gRPC server serves a port with mTLS, as Istio's grpcgen decides
 * (pilot/pkg/networking/grpcgen/lds.go buildInboundFilterChains). gRPC cannot sniff TLS, so there is no
 * PERMISSIVE chain:
 *
 * - STRICT → mTLS;
 * - PERMISSIVE → plaintext, unless the workload is labelled `security.istio.io/tlsMode=istio`
 *   (its clients will send mTLS), then mTLS;
 * - DISABLE → plaintext.
 *
 * The client side (clusters.ts) asks the same function about each endpoint, so a server and
 * its clients always agree, and one snapshot switches both.
 */
export interface GrpcInboundTls {
  mtls: boolean;
  mode: EffectiveMode;
  /** For logs and docs: which policy decided and why. */
  reason: string;
}

export function grpcInboundTls(index: MeshIndex, namespace: string, labels: Readonly<Record<string, string>>, port: number): GrpcInboundTls {
  const decision = index.portMtls(namespace, labels, port);
  const by = decision.decidedBy ?? 'default PERMISSIVE, no PeerAuthentication applies';
  switch (decision.mode) {
    case 'STRICT':
      return { mtls: true, mode: 'STRICT', reason: `STRICT (${by})` };
    case 'DISABLE':
      return { mtls: false, mode: 'DISABLE', reason: `DISABLE (${by})` };
    default: {
      const marked = labels[ISTIO_TLS_MODE_LABEL] === 'istio';
      return marked
        ? { mtls: true, mode: 'PERMISSIVE', reason: `PERMISSIVE (${by}) and labelled ${ISTIO_TLS_MODE_LABEL}=istio: served as mTLS` }
        : { mtls: false, mode: 'PERMISSIVE', reason: `PERMISSIVE (${by}); gRPC cannot accept both, served as plaintext (label ${ISTIO_TLS_MODE_LABEL}=istio for mTLS)` };
    }
  }
}
