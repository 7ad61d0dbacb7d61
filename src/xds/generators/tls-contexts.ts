import type { MeshSettings } from '../../config/model.js';
import { ALL_BUNDLES_SECRET, DEFAULT_SECRET, ROOTCA_SECRET } from '../../svid/secret-names.js';
import { trustDomainsForValidation } from '../../mesh/spiffe-identity.js';
import { ExtensionName, ExtensionType } from '../../envoy/extension-types.js';
import type { ConfigSource, Packed, PackedAny, SdsSecretConfig, SubjectAltNameMatcher, TransportSocket } from '../../envoy/messages.js';

/**
 * TLS contexts for mesh mTLS (inbound: pilot/pkg/security/authn/utils/utils.go BuildInboundTLS;
 * outbound: pilot/pkg/networking/core/cluster_tls.go buildUpstreamClusterTLSContext). Certificates come over
 * SDS on the ADS stream: `default` (the proxy's SVID) and `ROOTCA` (the trust bundle), with
 * initial_fetch_timeout 0s as Istio sets it, so listeners and clusters stay warming until the
 * secrets arrive rather than coming up without a certificate.
 *
 * Peer identities are checked with `match_typed_subject_alt_names` on URI SANs: SPIFFE IDs
 * live only in URI SANs (X509-SVID §2), and the typed matcher cannot be satisfied by a DNS
 * SAN that happens to spell a SPIFFE ID. (Istio still writes the deprecated untyped
 * `match_subject_alt_names`; the accepted identities are the same.)
 *
 * Peers of federated trust domains: their roots are not in ROOTCA, so a context that must accept
 * one validates with the `ALL` secret instead, Envoy's SPIFFE certificate validator with one
 * bundle per trust domain (tls_spiffe_validator_config.proto): a peer is checked against the
 * bundle of the trust domain its ID names only. The SAN matchers stay in the default context and
 * are merged with it (combined_validation_context), so the accepted identities are unchanged.
 */

/** Istio's default inbound TLS 1.2 cipher suites (TLS 1.3 suites are not configurable). */
export const ISTIO_CIPHER_SUITES: readonly string[] = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-GCM-SHA256',
];

export function sdsOverAds(): ConfigSource {
  return { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: { seconds: 0 } };
}

function sdsSecret(name: string): SdsSecretConfig {
  return { name, sds_config: sdsOverAds() };
}

function uriSan(kind: 'prefix' | 'exact', value: string): SubjectAltNameMatcher {
  return { san_type: 'URI', matcher: kind === 'prefix' ? { prefix: value } : { exact: value } };
}

export interface DownstreamTlsOptions {
  mesh: MeshSettings;
  /** ALPN the server advertises; never an `istio*` value. */
  alpn: readonly string[];
  /** Trust domains meshd federates with: their workloads are accepted too, each verified by its own bundle. */
  federatedTrustDomains?: readonly string[];
}

/** Inbound: the client must present an SVID of a trust domain the mesh accepts. */
export function downstreamTlsContext(opts: DownstreamTlsOptions): Packed<typeof ExtensionType.DownstreamTlsContext> {
  const { mesh } = opts;
  const own = trustDomainsForValidation(mesh);
  const federated = (opts.federatedTrustDomains ?? []).filter((td) => !own.includes(td));
  return {
    '@type': ExtensionType.DownstreamTlsContext,
    common_tls_context: {
      tls_params: {
        tls_minimum_protocol_version: mesh.minTlsVersion === 'TLSV1_3' ? 'TLSv1_3' : 'TLSv1_2',
        tls_maximum_protocol_version: 'TLSv1_3',
        cipher_suites: [...ISTIO_CIPHER_SUITES],
      },
      alpn_protocols: [...opts.alpn],
      tls_certificate_sds_secret_configs: [sdsSecret(DEFAULT_SECRET)],
      combined_validation_context: {
        default_validation_context: {
          match_typed_subject_alt_names: [...own, ...federated].map((td) => uriSan('prefix', `spiffe://${td}/`)),
        },
        validation_context_sds_secret_config: sdsSecret(federated.length > 0 ? ALL_BUNDLES_SECRET : ROOTCA_SECRET),
      },
    },
    require_client_certificate: { value: true },
  };
}

export interface UpstreamTlsOptions {
  /** Exact SPIFFE IDs the server may present (the service's accounts, expanded with aliases). */
  serverIdentities: readonly string[];
  sni: string;
  alpn: readonly string[];
  /** Some server identity is of a federated trust domain: validate with ALL (default ROOTCA). */
  federated?: boolean;
}

/** Outbound ISTIO_MUTUAL: TLS 1.2–1.3 (Istio's defaultUpstreamCommonTLSContext), exact server SANs. */
export function upstreamTlsContext(opts: UpstreamTlsOptions): Packed<typeof ExtensionType.UpstreamTlsContext> {
  return {
    '@type': ExtensionType.UpstreamTlsContext,
    common_tls_context: {
      tls_params: { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' },
      alpn_protocols: [...opts.alpn],
      tls_certificate_sds_secret_configs: [sdsSecret(DEFAULT_SECRET)],
      combined_validation_context: {
        default_validation_context: {
          match_typed_subject_alt_names: opts.serverIdentities.map((id) => uriSan('exact', id)),
        },
        validation_context_sds_secret_config: sdsSecret(opts.federated ? ALL_BUNDLES_SECRET : ROOTCA_SECRET),
      },
    },
    sni: opts.sni,
  };
}

export function tlsTransportSocket(context: PackedAny): TransportSocket {
  return { name: ExtensionName.Tls, typed_config: context };
}

export function rawBufferTransportSocket(): TransportSocket {
  return { name: ExtensionName.RawBuffer, typed_config: { '@type': ExtensionType.RawBuffer } };
}
