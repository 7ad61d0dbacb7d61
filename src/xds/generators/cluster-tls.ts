import type { ClientTlsSettings, MeshSettings, PortProtocol } from '../../config/model.js';
import { ExtensionType } from '../../envoy/extension-types.js';
import type { CommonTlsContext, Packed, TransportSocket } from '../../envoy/messages.js';
import { isHttp2Protocol } from '../../mesh/protocols.js';
import { namesForeignTrustDomain } from '../../mesh/spiffe-identity.js';
import { tlsTransportSocket, upstreamTlsContext } from './tls-contexts.js';
import { upstreamMtlsAlpns } from './alpn.js';

/**
 * The client TLS a DestinationRule asks for, as the cluster's transport socket, following
 * istiod (pilot/pkg/networking/core/cluster_tls.go buildUpstreamTLSSettings,
 * buildUpstreamClusterTLSContext). A DestinationRule's tls replaces auto mTLS for the port
 * (there are then no transport_socket_matches), even on a MESH_EXTERNAL service:
 *
 * - DISABLE: no transport socket, plaintext, whatever the endpoints' tlsMode says;
 * - ISTIO_MUTUAL: the mesh's own mTLS (SDS `default`/`ROOTCA`); its `sni` else the
 *   `outbound_.<port>_._.<host>` SNI, its `subjectAltNames` else the service's SPIFFE IDs;
 * - SIMPLE: TLS towards the server with `sni` (none when unset) and TLS 1.2–1.3; the server is
 *   verified against `caCertificates` (else the host's system CA bundle, istiod's default with
 *   VERIFY_CERTIFICATE_AT_CLIENT) and `subjectAltNames` (any SAN type, exact), unless
 *   insecureSkipVerify;
 * - MUTUAL: SIMPLE plus the client certificate and key.
 *
 * Certificates, keys and CA files are files on the sidecar's host: istiod hands their paths to
 * istio-agent's SDS (`file-cert:`/`file-root:` resources), which reads them there; meshd's
 * sidecar has no such agent, so Envoy reads the same paths itself (DataSource filename, which
 * Envoy also watches for rotation).
 */

/** Debian's (and istio-agent's first-tried) system CA bundle, used when SIMPLE/MUTUAL name no caCertificates. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** util.ALPNH2Only for HTTP/2 clusters; none otherwise (Envoy then offers nothing). */
function userAlpn(protocol: PortProtocol): string[] | undefined {
  return isHttp2Protocol(protocol) ? ['h2'] : undefined;
}

function userTlsContext(tls: ClientTlsSettings, protocol: PortProtocol): Packed<typeof ExtensionType.UpstreamTlsContext> {
  const common: CommonTlsContext = {
    tls_params: { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' },
  };
  const alpn = userAlpn(protocol);
  if (alpn !== undefined) common.alpn_protocols = alpn;
  if (tls.mode === 'MUTUAL' && tls.clientCertificate !== undefined && tls.privateKey !== undefined) {
    common.tls_certificates = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
  }
  if (tls.insecureSkipVerify === true) {
    common.validation_context = {};
  } else {
    common.validation_context = {
      trusted_ca: { filename: tls.caCertificates ?? SYSTEM_CA_BUNDLE },
      ...(tls.subjectAltNames.length > 0 ? { match_subject_alt_names: tls.subjectAltNames.map((exact) => ({ exact })) } : {}),
      ...(tls.caCrl !== undefined ? { crl: { filename: tls.caCrl } } : {}),
    };
  }
  return { '@type': ExtensionType.UpstreamTlsContext, common_tls_context: common, ...(tls.sni !== undefined && tls.sni !== '' ? { sni: tls.sni } : {}) };
}

export interface UserTlsInput {
  tls: ClientTlsSettings;
  protocol: PortProtocol;
  /** For ISTIO_MUTUAL: the service's SPIFFE IDs and the mesh SNI of the port. */
  serverIdentities: readonly string[];
  meshSni: string;
  /** The mesh's trust domains: which server identities are federated ones. */
  mesh: MeshSettings;
}

/** The cluster's transport socket for a DestinationRule's tls; undefined means plaintext (DISABLE). */
export function userTransportSocket(i: UserTlsInput): TransportSocket | undefined {
  switch (i.tls.mode) {
    case 'DISABLE':
      return undefined;
    case 'ISTIO_MUTUAL': {
      const serverIdentities = i.tls.subjectAltNames.length > 0 ? i.tls.subjectAltNames : i.serverIdentities;
      return tlsTransportSocket(upstreamTlsContext({
        serverIdentities,
        // A server of a federated trust domain is verified with its own bundle (ALL), as auto mTLS does.
        federated: namesForeignTrustDomain(serverIdentities, i.mesh),
        sni: i.tls.sni !== undefined && i.tls.sni !== '' ? i.tls.sni : i.meshSni,
        alpn: upstreamMtlsAlpns(i.protocol),
      }));
    }
    case 'SIMPLE':
    case 'MUTUAL':
      return tlsTransportSocket(userTlsContext(i.tls, i.protocol));
  }
}
