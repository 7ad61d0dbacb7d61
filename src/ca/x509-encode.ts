import { bitString, explicit, sequence, smallInteger, time, tlv, Tag } from './der.js';
import { encodeExtensions, type CertificateTemplate } from './templates.js';

/**
 * TBSCertificate and Certificate (RFC 5280 §4.1) from a template. The signer supplies the
 * AlgorithmIdentifier because only it knows its key: forge's cert.sign() hard-codes an
 * RSA OID into the TBS, which is why signing is ours.
 */

const VERSION_3 = explicit(0, smallInteger(2));

export function encodeTbsCertificate(t: CertificateTemplate, signatureAlgorithm: Buffer): Buffer {
  return sequence(
    VERSION_3,
    tlv(Tag.INTEGER, t.serial),
    signatureAlgorithm,
    t.issuer,
    sequence(time(t.notBefore), time(t.notAfter)),
    t.subject,
    t.spki,
    encodeExtensions(t.extensions),
  );
}

export function encodeCertificate(tbs: Buffer, signatureAlgorithm: Buffer, signature: Uint8Array): Buffer {
  return sequence(tbs, signatureAlgorithm, bitString(signature));
}
