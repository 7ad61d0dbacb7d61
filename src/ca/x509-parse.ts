import type { KeyUsageName } from './oids.js';
import { KeyUsageBit, OID } from './oids.js';
import {
  bitsOf, childrenOf, content, DerError, expect, oidOf, raw, readDer, sequenceOf, timeOf,
} from './der-reader.js';
import { asBuffer } from '../common/bytes.js';

/**
 * Reading certificates back (RFC 5280 §4.1) with our strict DER reader: the validator
 * runs this on every certificate we mint, so it must cost a few µs, not tens. It shares
 * no code with der.ts (the writer), so it is an independent reading of what we encoded.
 * forge.pki.certificateFromAsn1 would not do: it only understands RSA keys.
 */

export class CertificateParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateParseError';
  }
}

export interface ParsedExtension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

export interface ParsedCertificate {
  der: Buffer;
  tbs: Buffer;
  /** 1, 2 or 3 (the field holds 0, 1, 2). */
  version: number;
  /** INTEGER content octets as encoded. */
  serial: Buffer;
  tbsSignatureAlgorithm: Buffer;
  signatureAlgorithm: Buffer;
  signatureAlgorithmOid: string;
  signature: Buffer;
  issuer: Buffer;
  subject: Buffer;
  subjectEmpty: boolean;
  notBefore: number;
  notAfter: number;
  spki: Buffer;
  extensions: ParsedExtension[];
}

export function parseCertificate(der: Uint8Array, what = 'certificate'): ParsedCertificate {
  try {
    return parse(asBuffer(der), what);
  } catch (e) {
    if (e instanceof DerError) throw new CertificateParseError(`${what} is malformed: ${e.message}`);
    throw e;
  }
}

function parse(buf: Buffer, what: string): ParsedCertificate {
  const [tbsEl, sigAlgEl, sigEl] = sequenceOf(readDer(buf, what), what, 3);
  const tbsParts = sequenceOf(tbsEl, 'TBSCertificate', 6, 10);
  let i = 0;
  let version = 1;
  if (tbsParts[0]!.tag === 0xa0) {
    const [v] = childrenOf(tbsParts[0]!, 'version');
    const vb = content(expect(v, 0x02, 'version'));
    version = vb.length === 1 ? vb[0]! + 1 : -1;
    i = 1;
  }
  const serial = content(expect(tbsParts[i++], 0x02, 'serialNumber'));
  const tbsSigAlg = expect(tbsParts[i++], 0x30, 'signature');
  const issuer = expect(tbsParts[i++], 0x30, 'issuer');
  const validity = sequenceOf(tbsParts[i++], 'validity', 2);
  const subject = expect(tbsParts[i++], 0x30, 'subject');
  const spki = expect(tbsParts[i++], 0x30, 'subjectPublicKeyInfo');
  const extensions: ParsedExtension[] = [];
  for (; i < tbsParts.length; i++) {
    const part = tbsParts[i]!;
    if ((part.tag & 0xc0) !== 0x80) throw new DerError('unexpected field after subjectPublicKeyInfo');
    if (part.tag !== 0xa3) continue; // issuerUniqueID / subjectUniqueID
    const [list] = childrenOf(part, 'extensions');
    for (const ext of sequenceOf(list, 'extensions', 1, 1000)) {
      const fields = sequenceOf(ext, 'extension', 2, 3);
      const extOid = oidOf(fields[0], 'extnID');
      let critical = false;
      if (fields.length === 3) {
        const c = content(expect(fields[1], 0x01, `extension ${extOid} critical`));
        // DER: BOOLEAN TRUE is 0xFF; the DEFAULT FALSE is omitted, never written.
        if (c.length !== 1 || c[0] !== 0xff) throw new DerError(`extension ${extOid}: critical written as FALSE or not as 0xFF`);
        critical = true;
      }
      extensions.push({ oid: extOid, critical, value: content(expect(fields[fields.length - 1], 0x04, `extension ${extOid} extnValue`)) });
    }
  }
  const [sigAlgOid] = sequenceOf(sigAlgEl, 'signatureAlgorithm', 1, 2);
  return {
    der: buf,
    tbs: raw(tbsEl!),
    version,
    serial,
    tbsSignatureAlgorithm: raw(tbsSigAlg),
    signatureAlgorithm: raw(sigAlgEl!),
    signatureAlgorithmOid: oidOf(sigAlgOid, 'signatureAlgorithm'),
    signature: bitsOf(sigEl, 'signatureValue').bytes,
    issuer: raw(issuer),
    subject: raw(subject),
    subjectEmpty: subject.end === subject.contentStart,
    notBefore: timeOf(validity[0], 'notBefore'),
    notAfter: timeOf(validity[1], 'notAfter'),
    spki: raw(spki),
    extensions,
  };
}

// ---- Extension values (RFC 5280 §4.2.1); each throws DerError when malformed ----

export function decodeBasicConstraints(value: Buffer): { ca: boolean; pathLen?: number } {
  const fields = sequenceOf(readDer(value, 'basicConstraints'), 'basicConstraints', 0, 2);
  let ca = false;
  let pathLen: number | undefined;
  for (const f of fields) {
    if (f.tag === 0x01) {
      const b = content(f);
      // DER: cA DEFAULT FALSE must be omitted, so an explicit FALSE is an encoding error.
      if (b.length !== 1 || b[0] !== 0xff) throw new DerError('basicConstraints: cA encoded as FALSE (DER omits the default)');
      ca = true;
    } else if (f.tag === 0x02) {
      const c = content(f);
      pathLen = c.length > 0 && c.length <= 4 ? c.readUIntBE(0, c.length) : -1;
    } else {
      throw new DerError('basicConstraints: unexpected field');
    }
  }
  return pathLen === undefined ? { ca } : { ca, pathLen };
}

const KEY_USAGE_BITS = Object.entries(KeyUsageBit) as [KeyUsageName, number][];

export function decodeKeyUsage(value: Buffer): Set<KeyUsageName> {
  const { bytes } = bitsOf(readDer(value, 'keyUsage'), 'keyUsage', true);
  const out = new Set<KeyUsageName>();
  for (const [name, bit] of KEY_USAGE_BITS) {
    const octet = bytes[bit >> 3];
    if (octet !== undefined && (octet & (0x80 >> (bit & 7))) !== 0) out.add(name);
  }
  return out;
}

export function decodeExtKeyUsage(value: Buffer): string[] {
  return sequenceOf(readDer(value, 'extKeyUsage'), 'extKeyUsage', 1, 100).map((e) => oidOf(e, 'KeyPurposeId'));
}

export interface GeneralNames {
  uris: string[];
  dnsNames: string[];
  /** Other GeneralName kinds (IP, email, directoryName...), by tag number. */
  other: number[];
}

export function decodeSubjectAltName(value: Buffer): GeneralNames {
  const out: GeneralNames = { uris: [], dnsNames: [], other: [] };
  for (const n of sequenceOf(readDer(value, 'subjectAltName'), 'subjectAltName', 1, 1000)) {
    if ((n.tag & 0xc0) !== 0x80) throw new DerError('subjectAltName: not a GeneralName');
    if (n.tag === 0x86) out.uris.push(content(n).toString('latin1'));
    else if (n.tag === 0x82) out.dnsNames.push(content(n).toString('latin1'));
    else out.other.push(n.tag & 0x1f);
  }
  return out;
}

export function decodeSubjectKeyId(value: Buffer): Buffer {
  return content(expect(readDer(value, 'subjectKeyIdentifier'), 0x04, 'subjectKeyIdentifier'));
}

export function decodeAuthorityKeyId(value: Buffer): Buffer | undefined {
  const keyId = sequenceOf(readDer(value, 'authorityKeyIdentifier'), 'authorityKeyIdentifier', 0, 3).find((f) => f.tag === 0x80);
  return keyId ? content(keyId) : undefined;
}

export function findExtension(cert: ParsedCertificate, extOid: string): ParsedExtension | undefined {
  return cert.extensions.find((e) => e.oid === extOid);
}

export const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.subjectKeyIdentifier, OID.keyUsage, OID.subjectAltName, OID.basicConstraints,
  OID.nameConstraints, OID.authorityKeyIdentifier, OID.extKeyUsage,
]);

/** The public key in a SubjectPublicKeyInfo, in the pieces a JWK needs (RFC 7518 §6). */
export type PublicKeyParts =
  | { kty: 'EC'; curveOid: string; point: Buffer }
  | { kty: 'RSA'; n: Buffer; e: Buffer }
  | { kty: 'other'; algorithmOid: string };

export function publicKeyParts(spki: Buffer): PublicKeyParts {
  const [algorithm, bits] = sequenceOf(readDer(spki, 'subjectPublicKeyInfo'), 'subjectPublicKeyInfo', 2);
  const [algOid, params] = sequenceOf(algorithm, 'algorithm', 1, 2);
  const algorithmOid = oidOf(algOid, 'algorithm');
  const key = bitsOf(bits, 'subjectPublicKey').bytes;
  if (algorithmOid === OID.ecPublicKey && params && params.tag === 0x06) return { kty: 'EC', curveOid: oidOf(params, 'namedCurve'), point: key };
  if (algorithmOid === OID.rsaEncryption) {
    const [n, e] = sequenceOf(readDer(key, 'RSAPublicKey'), 'RSAPublicKey', 2);
    const strip = (b: Buffer): Buffer => (b.length > 1 && b[0] === 0 ? b.subarray(1) : b);
    return { kty: 'RSA', n: strip(content(expect(n, 0x02, 'modulus'))), e: strip(content(expect(e, 0x02, 'publicExponent'))) };
  }
  return { kty: 'other', algorithmOid };
}

