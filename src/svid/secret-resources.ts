import type { Secret } from '../envoy/messages.js';
import { TypeUrl } from '../envoy/type-urls.js';

/**
 * Envoy Secret resources as plain objects (Envoy's field names), inline PEM as SPIRE and
 * istio-agent send them. Pure.
 */
export function tlsCertificateSecret(name: string, chainPem: string, keyPem: string): Secret {
  return {
    name,
    tls_certificate: {
      certificate_chain: { inline_bytes: Buffer.from(chainPem) },
      private_key: { inline_bytes: Buffer.from(keyPem) },
    },
  };
}

/**
 * The `tls_certificate` Secret as a serialised google.protobuf.Any, written in one buffer.
 *
 * Every proxy's own secret is new bytes (its own key), made for each SVID of 10,000 proxies
 * and again in a rotation storm. Through protobufjs that was a message tree, a Writer with an
 * op per field, the payload copied into an Any, and two PEM copies: a fifth of the SDS path's
 * non-crypto CPU. The layout is the one protobufjs writes for tlsCertificateSecret (fields in
 * number order); test/svid/secret-resources.test.ts holds the two byte for byte equal.
 *
 *   Any { 1 type_url; 2 value: Secret { 1 name; 2 tls_certificate: TlsCertificate {
 *     1 certificate_chain: DataSource { 2 inline_bytes }; 2 private_key: DataSource { 2 inline_bytes } } } }
 */
export function tlsCertificateSecretAny(name: string, chainPem: string, keyPem: string): Buffer {
  const typeUrl = TypeUrl.Secret;
  const [nameLen, chainLen, keyLen, urlLen] = [name, chainPem, keyPem, typeUrl].map((x) => Buffer.byteLength(x, 'utf8')) as [number, number, number, number];
  const chainSource = fieldSize(chainLen);
  const keySource = fieldSize(keyLen);
  const tls = fieldSize(chainSource) + fieldSize(keySource);
  const secret = fieldSize(nameLen) + fieldSize(tls);
  const out = Buffer.allocUnsafe(fieldSize(urlLen) + fieldSize(secret));
  let at = 0;
  const head = (tag: number, len: number): void => {
    out[at++] = (tag << 3) | 2; // length-delimited
    for (let v = len; ; v >>>= 7) {
      if (v < 0x80) { out[at++] = v; break; }
      out[at++] = (v & 0x7f) | 0x80;
    }
  };
  const text = (tag: number, value: string, len: number): void => {
    head(tag, len);
    at += out.write(value, at, len, 'utf8');
  };
  text(1, typeUrl, urlLen);
  head(2, secret);
  text(1, name, nameLen);
  head(2, tls);
  head(1, chainSource);
  text(2, chainPem, chainLen);
  head(2, keySource);
  text(2, keyPem, keyLen);
  if (at !== out.length) throw new Error(`tls_certificate secret: wrote ${at} of ${out.length} bytes`);
  return out;
}

/** Bytes of a length-delimited field (tag number below 16) with `len` bytes of content: tag, varint length, content. */
function fieldSize(len: number): number {
  let size = 1;
  for (let v = len; v >= 0x80; v >>>= 7) size += 1;
  return 1 + size + len;
}

export function trustedCaSecret(name: string, rootsPem: readonly string[]): Secret {
  return {
    name,
    validation_context: { trusted_ca: { inline_bytes: Buffer.from(rootsPem.join('')) } },
  };
}

/** Envoy's SPIFFE certificate validator: one entry per trust domain, sorted for deterministic bytes. */
export function spiffeValidatorSecret(name: string, bundles: ReadonlyMap<string, readonly string[]>): Secret {
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
