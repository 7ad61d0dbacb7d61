import { TypeUrl } from '../xds/type-urls.js';

/**
 * Envoy Secret resources as plain objects (Envoy's field names), inline PEM as SPIRE and
 * istio-agent send them. Pure.
 */
export function tlsCertificateSecret(name: string, chainPem: string, keyPem: string): Record<string, unknown> {
  return {
    name,
    tls_certificate: {
      certificate_chain: { inline_bytes: Buffer.from(chainPem) },
      private_key: { inline_bytes: Buffer.from(keyPem) },
    },
  };
}

export function trustedCaSecret(name: string, rootsPem: readonly string[]): Record<string, unknown> {
  return {
    name,
    validation_context: { trusted_ca: { inline_bytes: Buffer.from(rootsPem.join('')) } },
  };
}

/** Envoy's SPIFFE certificate validator: one entry per trust domain, sorted for deterministic bytes. */
export function spiffeValidatorSecret(name: string, bundles: ReadonlyMap<string, readonly string[]>): Record<string, unknown> {
  const trustDomains = [...bundles.keys()].sort().map((td) => ({
    name: td,
    trust_bundle: { inline_bytes: Buffer.from(bundles.get(td)!.join('')) },
  }));
  return {
    name,
    validation_context: {
      custom_validator_config: {
        name: 'envoy.tls.cert_validator.spiffe',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
          trust_domains: trustDomains,
        },
      },
    },
  };
}

export const SECRET_TYPE_URL = TypeUrl.Secret;
