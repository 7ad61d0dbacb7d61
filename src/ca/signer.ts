import { hash, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { signatureAlgorithmFor, keyIdentifier, type KeyType, type SignatureAlgorithm } from './keys.js';
import { toPem } from './pem.js';
import type { CertificateTemplate, IssuerInfo } from './templates.js';
import { encodeCertificate, encodeTbsCertificate } from './x509-encode.js';
import { decodeSubjectKeyId, parseCertificate } from './x509-parse.js';
import { OID } from './oids.js';

/**
 * The external-signer seam: whatever signs leaves (our built-in root, a plug-in
 * intermediate from --ca-dir, or an external CA such as a KMS or a remote issuer) sits
 * behind this one interface. It gets the complete template (subject key, SANs, validity,
 * extensions) and returns a certificate; the issuer then validates that certificate
 * against the template's expectations, so an external CA that drifts from the X509-SVID
 * profile is caught before anything is handed out.
 */
export interface Signer {
  /** The certificate that signs (leaves chain to it). */
  readonly certificate: SigningCertificate;
  /** PEM a TLS peer presents after the leaf: intermediates up to, not including, the root. '' under a root. */
  readonly chainPem: string;
  /** notAfter of the whole signing chain (the earliest in it): leaves are capped here. */
  readonly chainNotAfter: number;
  /** The DER certificate; a key in this process returns it at once, an external CA a promise. */
  signCertificate(template: CertificateTemplate): Buffer | Promise<Buffer>;
  /** Optional: several at once, in order (a local key encodes every TBS, then signs them back to back). */
  signCertificates?(templates: readonly CertificateTemplate[]): Buffer[] | Promise<Buffer[]>;
}

export interface SigningCertificate extends IssuerInfo {
  der: Buffer;
  pem: string;
  /** SHA-256 of the DER, lowercase hex. */
  fingerprint256: string;
}

export function fingerprint256(der: Uint8Array): string {
  return hash('sha256', der, 'hex');
}

/** The facts a template and a TLS chain need, read from a CA certificate. */
export function signingCertificate(der: Buffer, what = 'signing certificate'): SigningCertificate {
  const cert = parseCertificate(der, what);
  const skiExt = cert.extensions.find((e) => e.oid === OID.subjectKeyIdentifier);
  return {
    der,
    pem: toPem('CERTIFICATE', der),
    fingerprint256: fingerprint256(der),
    subject: cert.subject,
    // RFC 5280 §4.2.1.2: a CA SHOULD carry an SKI; when a plug-in CA lacks one, use the
    // method-1 value so our leaves' AKI is still meaningful.
    subjectKeyId: skiExt ? decodeSubjectKeyId(skiExt.value) : keyIdentifier(cert.spki),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

const signAsync = promisify(sign);

/**
 * Signs the DER TBSCertificate with Node's crypto.sign (OpenSSL). ECDSA (~25 µs) and RSA 2048
 * (~0.25 ms) sign inline: handing a job that short to the libuv pool costs 5-20% of it in
 * thread hand-offs (measured in bench/ca.ts runs). RSA 3072/4096 roots (1-5 ms a signature)
 * sign on the pool, so the event loop is never held longer than one RSA 2048 signature.
 */
export function signTbs(tbs: Buffer, key: KeyObject, keyType: KeyType, algorithm: SignatureAlgorithm): Buffer | Promise<Buffer> {
  if (keyType === 'ec-p256' || keyType === 'ec-p384' || keyType === 'rsa-2048') return sign(algorithm.hash, tbs, key);
  return signAsync(algorithm.hash, tbs, key);
}

/**
 * The signed certificates, in order: every TBS encoded first, then the signatures back to back
 * (OpenSSL's curve tables stay in the CPU cache; see SvidIssuer.issueBatch). At once when the
 * key signs inline (see signTbs), else a promise.
 */
export function signTemplates(templates: readonly CertificateTemplate[], key: KeyObject, keyType: KeyType): Buffer[] | Promise<Buffer[]> {
  const algorithm = signatureAlgorithmFor(keyType);
  const tbs = templates.map((t) => encodeTbsCertificate(t, algorithm.der));
  const signatures = tbs.map((t) => signTbs(t, key, keyType, algorithm));
  const certificates = (sigs: Buffer[]): Buffer[] => tbs.map((t, i) => encodeCertificate(t, algorithm.der, sigs[i]!));
  return signatures.every((s): s is Buffer => Buffer.isBuffer(s)) ? certificates(signatures) : Promise.all(signatures).then(certificates);
}

/** signTemplates for one template. */
export function signTemplate(template: CertificateTemplate, key: KeyObject, keyType: KeyType): Buffer | Promise<Buffer> {
  const signed = signTemplates([template], key, keyType);
  return Array.isArray(signed) ? signed[0]! : signed.then((certs) => certs[0]!);
}

/** A CA whose private key is in this process: the built-in root or a plug-in intermediate. */
export class LocalKeySigner implements Signer {
  readonly chainNotAfter: number;

  constructor(
    readonly certificate: SigningCertificate,
    /** Also handed to mint workers (mint-pool.ts): Node passes a KeyObject to a thread as the same key, not as exported bytes. */
    readonly privateKey: KeyObject,
    readonly keyType: KeyType,
    readonly chainPem = '',
    chainNotAfter?: number,
  ) {
    this.chainNotAfter = Math.min(certificate.notAfter, chainNotAfter ?? Infinity);
  }

  signCertificate(template: CertificateTemplate): Buffer | Promise<Buffer> {
    return signTemplate(template, this.privateKey, this.keyType);
  }

  signCertificates(templates: readonly CertificateTemplate[]): Buffer[] | Promise<Buffer[]> {
    return signTemplates(templates, this.privateKey, this.keyType);
  }
}
