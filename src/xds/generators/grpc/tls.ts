import { ExtensionName, ExtensionType } from '../../../envoy/extension-types.js';
import type { CertificateValidationContext, CommonTlsContext, Packed, TransportSocket } from '../../../envoy/messages.js';

/**
 * TLS for proxyless gRPC: certificate provider instances named in the gRPC bootstrap instead of
 * SDS (gRFC A29; Istio pilot/pkg/networking/grpcgen/grpcgen.go buildCommonTLSContext). The instance `default` is the
 * bootstrap's file_watcher over the agent's files; certificate names `default` (own SVID) and
 * `ROOTCA` (trust bundle) as Istio writes them.
 *
 * What grpc-js-xds 1.14.1 refuses (reference §6) and so never appears here: SDS secret configs,
 * only the deprecated provider fields, tls_params on the client, require_sni, a transport socket
 * not named exactly envoy.transport_sockets.tls, require_client_certificate without a
 * validation context. Server-side SAN matching is accepted but ignored by gRPC, so it is not sent.
 */
export const CERTIFICATE_PROVIDER_INSTANCE = 'default';
export const IDENTITY_CERTIFICATE_NAME = 'default';
export const ROOT_CERTIFICATE_NAME = 'ROOTCA';

function commonTlsContext(matchSpiffeIds?: readonly string[]): CommonTlsContext {
  const validation: CertificateValidationContext = {
    ca_certificate_provider_instance: { instance_name: CERTIFICATE_PROVIDER_INSTANCE, certificate_name: ROOT_CERTIFICATE_NAME },
  };
  if (matchSpiffeIds !== undefined) validation.match_subject_alt_names = matchSpiffeIds.map((id) => ({ exact: id }));
  // A plain validation_context rather than Istio's combined_validation_context: gRPC accepts both
  // (reference §2), and Envoy's own schema requires a combined context to carry an SDS config
  // (PGV: validation_context_sds_secret_config is required), which gRPC in turn NACKs.
  return {
    tls_certificate_provider_instance: { instance_name: CERTIFICATE_PROVIDER_INSTANCE, certificate_name: IDENTITY_CERTIFICATE_NAME },
    validation_context: validation,
  };
}

/** Server side of mesh mTLS: a client SVID from the bundle is required. */
export function grpcDownstreamTls(): TransportSocket {
  const context: Packed<typeof ExtensionType.DownstreamTlsContext> = {
    '@type': ExtensionType.DownstreamTlsContext,
    require_client_certificate: { value: true },
    common_tls_context: commonTlsContext(),
  };
  return { name: ExtensionName.Tls, typed_config: context };
}

/** Client side: our SVID, the bundle, and the server's SPIFFE ID among `serverIds` (exact). */
export function grpcUpstreamTls(serverIds: readonly string[]): TransportSocket {
  const context: Packed<typeof ExtensionType.UpstreamTlsContext> = {
    '@type': ExtensionType.UpstreamTlsContext,
    common_tls_context: commonTlsContext(serverIds),
  };
  return { name: ExtensionName.Tls, typed_config: context };
}
