import { OID } from './oids.js';
import { tryParseSpiffeId } from './spiffe-id.js';
import type { IssuerInfo } from './templates.js';
import {
  CertificateParseError, KNOWN_EXTENSIONS, decodeAuthorityKeyId, decodeBasicConstraints, decodeExtKeyUsage,
  decodeKeyUsage, decodeSubjectAltName, decodeSubjectKeyId, parseCertificate, type ParsedCertificate,
} from './x509-parse.js';

/**
 * "Validate what you mint" (SPIRE pkg/server/credvalidator): every certificate we create is
 * read back from its DER, by a different parser than the encoder that wrote it, and held
 * against the X509-SVID table (spiffe X509-SVID.md §4, §5) before anyone gets it. A
 * failure here is a bug in meshd (or in an external signer), never a user error.
 */

export type Validation = { valid: true; cert: ParsedCertificate } | { valid: false; errors: string[] };

export interface LeafExpectations {
  spiffeId: string;
  trustDomain: string;
  dnsNames?: string[];
  /** The key the caller asked to certify (DER SPKI). */
  spki?: Buffer;
  /** RSA leaves may carry keyEncipherment; EC ones have no use for it. */
  rsa?: boolean;
  issuer: IssuerInfo;
  now: number;
}

export interface SigningCertificateExpectations {
  trustDomain: string;
  /** Check the validity window at this time; omitted when loading stored roots (an expired one is pruned, not fatal). */
  now?: number;
  /** Built-in roots are self-signed: issuer == subject. */
  selfSigned?: boolean;
}

function parse(der: Uint8Array, what: string): ParsedCertificate | string {
  try {
    return parseCertificate(der, what);
  } catch (e) {
    if (e instanceof CertificateParseError) return e.message;
    throw e;
  }
}

/** Checks shared by every certificate: version, serial, algorithms, validity, extension hygiene. */
function commonChecks(cert: ParsedCertificate, now: number | undefined, errors: string[]): void {
  if (cert.version !== 3) errors.push(`version is v${cert.version}, must be v3 (extensions are required)`);
  const s = cert.serial;
  // RFC 5280 §4.1.2.2: positive, at most 20 octets; DER: minimal.
  if (s.length === 0 || s.length > 20) errors.push(`serial is ${s.length} octets, must be 1-20`);
  else if ((s[0]! & 0x80) !== 0) errors.push('serial is negative');
  else if (s.length > 1 && s[0] === 0 && (s[1]! & 0x80) === 0) errors.push('serial has a superfluous leading zero octet (not DER)');
  else if (s.every((b) => b === 0)) errors.push('serial is zero');
  if (!cert.tbsSignatureAlgorithm.equals(cert.signatureAlgorithm)) errors.push('TBS signature algorithm differs from the outer signatureAlgorithm (RFC 5280 §4.1.1.2)');
  if (cert.notAfter <= cert.notBefore) errors.push('notAfter is not after notBefore');
  if (now !== undefined && now < cert.notBefore) errors.push(`not yet valid (notBefore ${new Date(cert.notBefore).toISOString()})`);
  if (now !== undefined && now >= cert.notAfter) errors.push(`already expired (notAfter ${new Date(cert.notAfter).toISOString()})`);
  const seen = new Set<string>();
  for (const e of cert.extensions) {
    if (seen.has(e.oid)) errors.push(`extension ${e.oid} appears twice (RFC 5280 §4.2)`);
    seen.add(e.oid);
    if (e.critical && !KNOWN_EXTENSIONS.has(e.oid)) errors.push(`unknown critical extension ${e.oid}`);
  }
}

function guard(errors: string[], what: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    errors.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function validateLeafSvid(der: Uint8Array, exp: LeafExpectations): Validation {
  const cert = parse(der, 'leaf');
  if (typeof cert === 'string') return { valid: false, errors: [cert] };
  const errors: string[] = [];
  commonChecks(cert, exp.now, errors);
  const ext = (oid: string) => cert.extensions.find((e) => e.oid === oid);

  if (!cert.issuer.equals(exp.issuer.subject)) errors.push('issuer Name is not the signing certificate\'s subject');
  if (cert.notAfter > exp.issuer.notAfter) errors.push('notAfter is later than the signing certificate\'s notAfter');
  if (exp.spki && !cert.spki.equals(exp.spki)) errors.push('the certified public key is not the one requested');

  // URI SAN: exactly one, the expected SPIFFE ID, non-root path (X509-SVID §2, §5.1).
  const san = ext(OID.subjectAltName);
  if (!san) errors.push('no subjectAltName extension');
  else guard(errors, 'subjectAltName', () => {
    const names = decodeSubjectAltName(san.value);
    if (names.uris.length !== 1) errors.push(`has ${names.uris.length} URI SANs, an X509-SVID has exactly one`);
    const uri = names.uris[0];
    if (uri !== undefined) {
      const parsed = tryParseSpiffeId(uri);
      if (!parsed.ok) errors.push(parsed.error.message);
      else {
        if (parsed.value.path === '') errors.push('leaf SPIFFE ID has no path (a root ID belongs to signing certificates)');
        if (parsed.value.trustDomain !== exp.trustDomain) errors.push(`SPIFFE ID is in trust domain ${parsed.value.trustDomain}, not ${exp.trustDomain}`);
      }
      if (uri !== exp.spiffeId) errors.push(`URI SAN is ${uri}, expected ${exp.spiffeId}`);
    }
    const wantDns = exp.dnsNames ?? [];
    if (names.dnsNames.join(',') !== wantDns.join(',')) errors.push(`DNS SANs are [${names.dnsNames.join(', ')}], expected [${wantDns.join(', ')}]`);
    if (names.other.length > 0) errors.push(`unexpected GeneralName kinds [${names.other.join(', ')}]`);
    // RFC 5280 §4.1.2.6, X509-SVID §4: an empty subject makes the SAN extension critical.
    if (cert.subjectEmpty && !san.critical) errors.push('subject is empty but subjectAltName is not critical');
  });

  const bc = ext(OID.basicConstraints);
  if (!bc) errors.push('no basicConstraints extension');
  else guard(errors, 'basicConstraints', () => {
    if (decodeBasicConstraints(bc.value).ca) errors.push('basicConstraints cA is TRUE on a leaf');
  });

  const ku = ext(OID.keyUsage);
  if (!ku) errors.push('no keyUsage extension (X509-SVID §4.3: MUST be present)');
  else guard(errors, 'keyUsage', () => {
    if (!ku.critical) errors.push('keyUsage is not critical');
    const usages = decodeKeyUsage(ku.value);
    if (!usages.has('digitalSignature')) errors.push('keyUsage lacks digitalSignature');
    if (usages.has('keyCertSign') || usages.has('cRLSign')) errors.push('keyUsage has keyCertSign or cRLSign on a leaf');
    for (const u of usages) {
      if (u !== 'digitalSignature' && !(exp.rsa && u === 'keyEncipherment')) errors.push(`keyUsage has unexpected ${u}`);
    }
  });

  const eku = ext(OID.extKeyUsage);
  if (!eku) errors.push('no extKeyUsage extension');
  else guard(errors, 'extKeyUsage', () => {
    const purposes = decodeExtKeyUsage(eku.value);
    if (!purposes.includes(OID.serverAuth) || !purposes.includes(OID.clientAuth)) errors.push('extKeyUsage lacks serverAuth or clientAuth (X509-SVID §4.4)');
  });

  const aki = ext(OID.authorityKeyIdentifier);
  if (!aki) errors.push('no authorityKeyIdentifier extension');
  else guard(errors, 'authorityKeyIdentifier', () => {
    const id = decodeAuthorityKeyId(aki.value);
    if (!id || !id.equals(exp.issuer.subjectKeyId)) errors.push('authorityKeyIdentifier is not the signer\'s subjectKeyIdentifier');
  });
  if (!ext(OID.subjectKeyIdentifier)) errors.push('no subjectKeyIdentifier extension');

  return errors.length === 0 ? { valid: true, cert } : { valid: false, errors };
}

/** A signing (CA) certificate per X509-SVID §4.1/§4.3; used for our roots and plug-in signing certs. */
export function validateSigningCertificate(der: Uint8Array, exp: SigningCertificateExpectations): Validation {
  const cert = parse(der, 'signing certificate');
  if (typeof cert === 'string') return { valid: false, errors: [cert] };
  const errors: string[] = [];
  commonChecks(cert, exp.now, errors);
  const ext = (oid: string) => cert.extensions.find((e) => e.oid === oid);
  if (exp.selfSigned && !cert.issuer.equals(cert.subject)) errors.push('issuer is not the subject on a self-signed root');

  const bc = ext(OID.basicConstraints);
  if (!bc) errors.push('no basicConstraints extension: not a CA certificate');
  else guard(errors, 'basicConstraints', () => {
    if (!decodeBasicConstraints(bc.value).ca) errors.push('basicConstraints cA is not TRUE: not a CA certificate');
    if (!bc.critical) errors.push('basicConstraints is not critical (RFC 5280 §4.2.1.9)');
  });
  const ku = ext(OID.keyUsage);
  if (!ku) errors.push('no keyUsage extension');
  else guard(errors, 'keyUsage', () => {
    if (!ku.critical) errors.push('keyUsage is not critical');
    if (!decodeKeyUsage(ku.value).has('keyCertSign')) errors.push('keyUsage lacks keyCertSign');
  });
  const ski = ext(OID.subjectKeyIdentifier);
  if (ski) guard(errors, 'subjectKeyIdentifier', () => { decodeSubjectKeyId(ski.value); });
  // X509-SVID §4.1: a signing certificate SHOULD be an SVID; if it has a SPIFFE ID, no path.
  const san = ext(OID.subjectAltName);
  if (san) guard(errors, 'subjectAltName', () => {
    const names = decodeSubjectAltName(san.value);
    const spiffe = names.uris.filter((u) => u.startsWith('spiffe://'));
    if (spiffe.length > 1) errors.push(`has ${spiffe.length} SPIFFE IDs`);
    for (const uri of spiffe) {
      const parsed = tryParseSpiffeId(uri);
      if (!parsed.ok) errors.push(parsed.error.message);
      else if (parsed.value.path !== '') errors.push(`SPIFFE ID ${uri} has a path; a signing certificate's ID must be the trust domain alone`);
      else if (parsed.value.trustDomain !== exp.trustDomain) errors.push(`SPIFFE ID ${uri} is not in trust domain ${exp.trustDomain}`);
    }
  });
  return errors.length === 0 ? { valid: true, cert } : { valid: false, errors };
}
