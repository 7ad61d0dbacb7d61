import { X509Certificate } from 'node:crypto';
import { publicKeyJwk, type PublicKeyJwk } from '../ca/bundle.js';
import { OID } from '../ca/oids.js';
import { toPem } from '../ca/pem.js';
import { tryParseSpiffeId } from '../ca/spiffe-id.js';
import {
  CertificateParseError, decodeBasicConstraints, decodeKeyUsage, decodeSubjectAltName, findExtension, parseCertificate,
  type ParsedCertificate,
} from '../ca/x509-parse.js';

/**
 * One X.509 authority of a foreign trust domain, as its bundle's x509-svid JWK presents it
 * (X509-SVID §6): a CA certificate (basicConstraints cA, keyCertSign), for that trust domain
 * if it names one (a signing certificate's SPIFFE ID is the bare trust domain, X509-SVID
 * §4.1), self-signed ones carrying a signature that verifies, and the JWK's key members the
 * certificate's own key (RFC 7517 §4.7).
 */

export type AuthorityRefusal = 'invalid-certificate' | 'not-a-ca' | 'wrong-trust-domain' | 'key-mismatch';

export type AuthorityCheck = { ok: true; pem: string; cert: ParsedCertificate } | { ok: false; reason: AuthorityRefusal; message: string };

function refuse(reason: AuthorityRefusal, message: string): AuthorityCheck {
  return { ok: false, reason, message };
}

function unpadded(b64url: string): Buffer | undefined {
  return /^[A-Za-z0-9_-]*$/.test(b64url) ? Buffer.from(b64url, 'base64url') : undefined;
}

/** Big-endian integers compare without leading zero octets (RFC 7518 §2 Base64urlUInt). */
function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** The JWK members that must equal the certificate's key, compared as bytes. */
function keyMismatch(jwk: Readonly<Record<string, unknown>>, own: PublicKeyJwk): string | undefined {
  if (jwk.kty !== own.kty) return `kty is ${JSON.stringify(jwk.kty)} but the certificate holds an ${own.kty} key`;
  const members: [string, string, boolean][] = own.kty === 'EC'
    ? [['crv', own.crv, false], ['x', own.x, false], ['y', own.y, false]]
    : [['n', own.n, true], ['e', own.e, true]];
  for (const [name, expected, integer] of members) {
    const got = jwk[name];
    if (typeof got !== 'string') return `${name} is ${got === undefined ? 'missing' : 'not a string'}`;
    if (name === 'crv') {
      if (got !== expected) return `crv is ${JSON.stringify(got)} but the certificate's key is on ${expected}`;
      continue;
    }
    const bytes = unpadded(got);
    if (bytes === undefined) return `${name} is not base64url`;
    const want = Buffer.from(expected, 'base64url');
    const same = integer ? stripZeros(bytes).equals(stripZeros(want)) : bytes.equals(want);
    if (!same) return `${name} is not the certificate's key`;
  }
  return undefined;
}

/** Checks the certificate of one x509-svid JWK; `where` names it in messages ("keys[2]"). */
export function checkForeignAuthority(der: Buffer, jwk: Readonly<Record<string, unknown>>, trustDomain: string, where: string): AuthorityCheck {
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(der, `${where}.x5c[0]`);
  } catch (err) {
    if (err instanceof CertificateParseError) return refuse('invalid-certificate', err.message);
    throw err;
  }
  if (cert.version !== 3) return refuse('not-a-ca', `${where}: the certificate is X.509 v${cert.version}; a CA certificate needs v3 extensions`);
  const bc = findExtension(cert, OID.basicConstraints);
  try {
    if (bc === undefined || !decodeBasicConstraints(bc.value).ca) {
      return refuse('not-a-ca', `${where}: the certificate is not a CA certificate (basicConstraints cA is not set), so it cannot sign SVIDs`);
    }
    const ku = findExtension(cert, OID.keyUsage);
    if (ku !== undefined && !decodeKeyUsage(ku.value).has('keyCertSign')) {
      return refuse('not-a-ca', `${where}: the certificate's keyUsage lacks keyCertSign, so it cannot sign SVIDs`);
    }
    const san = findExtension(cert, OID.subjectAltName);
    const ids = san ? decodeSubjectAltName(san.value).uris.filter((u) => u.toLowerCase().startsWith('spiffe://')) : [];
    if (ids.length > 1) return refuse('invalid-certificate', `${where}: the certificate carries ${ids.length} SPIFFE IDs; a signing certificate has at most one`);
    for (const uri of ids) {
      const id = tryParseSpiffeId(uri);
      if (!id.ok) return refuse('invalid-certificate', `${where}: ${id.error.message}`);
      if (id.value.trustDomain !== trustDomain) {
        return refuse('wrong-trust-domain', `${where}: the certificate is an authority of trust domain ${id.value.trustDomain} (${uri}), not ${trustDomain}`);
      }
      if (id.value.path !== '') return refuse('invalid-certificate', `${where}: the certificate's SPIFFE ID ${uri} has a path; a signing certificate's ID is the trust domain alone`);
    }
  } catch (err) {
    return refuse('invalid-certificate', `${where}: ${(err as Error).message}`);
  }

  let own: PublicKeyJwk;
  try {
    own = publicKeyJwk(cert.spki);
  } catch (err) {
    return refuse('invalid-certificate', `${where}: ${(err as Error).message}`);
  }
  const mismatch = keyMismatch(jwk, own);
  if (mismatch) return refuse('key-mismatch', `${where}: the JWK does not describe its certificate's key: ${mismatch}`);

  const pem = toPem('CERTIFICATE', der);
  if (cert.issuer.equals(cert.subject)) {
    let verifies = false;
    try {
      const x = new X509Certificate(der);
      verifies = x.verify(x.publicKey);
    } catch {
      verifies = false;
    }
    if (!verifies) return refuse('invalid-certificate', `${where}: the certificate is self-signed but its signature does not verify with its own key`);
  }
  return { ok: true, pem, cert };
}
