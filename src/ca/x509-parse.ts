import forge from 'node-forge';
import type { KeyUsageName } from './oids.js';
import { KeyUsageBit, OID } from './oids.js';

/**
 * Reading certificates back, with forge's ASN.1 parser (fast here: ~2 µs for a leaf) and
 * our own walk of RFC 5280's structure. forge.pki.certificateFromAsn1 is not usable: it
 * only understands RSA keys. Being a different code base from der.ts, this is also an
 * independent reading of what our encoder wrote, which is what the validator needs.
 */

type Node = forge.asn1.Asn1;
const { Class, Type } = forge.asn1;

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

/** @types/node-forge only declares the old boolean form; forge 1.x takes an options object. */
const fromDer = forge.asn1.fromDer as unknown as (der: string, options: { strict: boolean; parseAllBytes: boolean; decodeBitStrings: boolean }) => Node;

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

export function parseDer(der: Uint8Array, what: string): Node {
  const binary = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
  let node: Node;
  try {
    node = fromDer(binary, { strict: true, parseAllBytes: true, decodeBitStrings: false });
  } catch (e) {
    throw new CertificateParseError(`${what} is not valid ASN.1: ${e instanceof Error ? e.message : String(e)}`);
  }
  // DER is canonical: re-encoding a DER input gives the input back. BER (indefinite
  // lengths, long-form small lengths...) does not, and signatures are over exact bytes.
  if (forge.asn1.toDer(node).getBytes() !== binary) throw new CertificateParseError(`${what} is BER, not DER`);
  return node;
}

export function toBytes(node: Node): Buffer {
  return bytes(forge.asn1.toDer(node).getBytes());
}

function children(node: Node | undefined, what: string, min: number, max = min): Node[] {
  if (!node || !Array.isArray(node.value)) throw new CertificateParseError(`${what}: expected a constructed value`);
  if (node.value.length < min || node.value.length > max) {
    throw new CertificateParseError(`${what}: expected ${min === max ? min : `${min}-${max}`} elements, found ${node.value.length}`);
  }
  return node.value;
}

function expectUniversal(node: Node | undefined, type: number, what: string): Node {
  if (!node || node.tagClass !== Class.UNIVERSAL || node.type !== type) throw new CertificateParseError(`${what}: unexpected ASN.1 type`);
  return node;
}

function primitive(node: Node, what: string): Buffer {
  if (typeof node.value !== 'string') throw new CertificateParseError(`${what}: expected a primitive value`);
  return bytes(node.value);
}

export function readOid(node: Node | undefined, what: string): string {
  return forge.asn1.derToOid(primitive(expectUniversal(node, Type.OID, what), what).toString('latin1'));
}

function readTime(node: Node | undefined, what: string): number {
  if (!node || node.tagClass !== Class.UNIVERSAL) throw new CertificateParseError(`${what}: expected a time`);
  const text = primitive(node, what).toString('latin1');
  // RFC 5280 §4.1.2.5.1/.2: seconds present, Zulu, no fractions.
  if (node.type === Type.UTCTIME && /^\d{12}Z$/.test(text)) return forge.asn1.utcTimeToDate(text).getTime();
  if (node.type === Type.GENERALIZEDTIME && /^\d{14}Z$/.test(text)) return forge.asn1.generalizedTimeToDate(text).getTime();
  throw new CertificateParseError(`${what}: "${text}" is not an RFC 5280 time`);
}

export function parseCertificate(der: Uint8Array, what = 'certificate'): ParsedCertificate {
  const root = parseDer(der, what);
  const [tbsNode, sigAlgNode, sigNode] = children(expectUniversal(root, Type.SEQUENCE, what), what, 3);
  const tbsParts = children(expectUniversal(tbsNode, Type.SEQUENCE, `${what} TBSCertificate`), `${what} TBSCertificate`, 6, 10);
  let i = 0;
  let version = 1;
  const first = tbsParts[0]!;
  if (first.tagClass === Class.CONTEXT_SPECIFIC && first.type === 0) {
    const [v] = children(first, `${what} version`, 1);
    const vb = primitive(expectUniversal(v, Type.INTEGER, `${what} version`), `${what} version`);
    version = vb.length === 1 ? vb[0]! + 1 : -1;
    i = 1;
  }
  const serialNode = expectUniversal(tbsParts[i++], Type.INTEGER, `${what} serialNumber`);
  const tbsSigAlg = expectUniversal(tbsParts[i++], Type.SEQUENCE, `${what} signature`);
  const issuer = expectUniversal(tbsParts[i++], Type.SEQUENCE, `${what} issuer`);
  const validity = children(expectUniversal(tbsParts[i++], Type.SEQUENCE, `${what} validity`), `${what} validity`, 2);
  const subject = expectUniversal(tbsParts[i++], Type.SEQUENCE, `${what} subject`);
  const spki = expectUniversal(tbsParts[i++], Type.SEQUENCE, `${what} subjectPublicKeyInfo`);
  const extensions: ParsedExtension[] = [];
  for (; i < tbsParts.length; i++) {
    const part = tbsParts[i]!;
    if (part.tagClass !== Class.CONTEXT_SPECIFIC) throw new CertificateParseError(`${what}: unexpected field in TBSCertificate`);
    if (part.type !== 3) continue; // issuerUniqueID / subjectUniqueID: not ours to judge here
    const [list] = children(part, `${what} extensions`, 1);
    for (const ext of children(expectUniversal(list, Type.SEQUENCE, `${what} extensions`), `${what} extensions`, 1, 1000)) {
      const parts = children(expectUniversal(ext, Type.SEQUENCE, `${what} extension`), `${what} extension`, 2, 3);
      const extOid = readOid(parts[0], `${what} extension id`);
      let critical = false;
      if (parts.length === 3) {
        const c = primitive(expectUniversal(parts[1], Type.BOOLEAN, `${what} extension ${extOid} critical`), 'critical');
        critical = c.length === 1 && c[0] === 0xff;
      }
      const value = primitive(expectUniversal(parts[parts.length - 1], Type.OCTETSTRING, `${what} extension ${extOid} value`), 'extnValue');
      extensions.push({ oid: extOid, critical, value });
    }
  }
  const [sigAlgOid] = children(expectUniversal(sigAlgNode, Type.SEQUENCE, `${what} signatureAlgorithm`), `${what} signatureAlgorithm`, 1, 2);
  const sigBits = primitive(expectUniversal(sigNode, Type.BITSTRING, `${what} signatureValue`), 'signatureValue');
  return {
    der: Buffer.from(der),
    tbs: toBytes(tbsNode!),
    version,
    serial: primitive(serialNode, 'serialNumber'),
    tbsSignatureAlgorithm: toBytes(tbsSigAlg),
    signatureAlgorithm: toBytes(sigAlgNode!),
    signatureAlgorithmOid: readOid(sigAlgOid, `${what} signatureAlgorithm`),
    signature: sigBits.subarray(1),
    issuer: toBytes(issuer),
    subject: toBytes(subject),
    subjectEmpty: Array.isArray(subject.value) && subject.value.length === 0,
    notBefore: readTime(validity[0], `${what} notBefore`),
    notAfter: readTime(validity[1], `${what} notAfter`),
    spki: toBytes(spki),
    extensions,
  };
}

// ---- Extension values (RFC 5280 §4.2.1) ----

export function decodeBasicConstraints(value: Buffer): { ca: boolean; pathLen?: number } {
  const parts = children(expectUniversal(parseDer(value, 'basicConstraints'), Type.SEQUENCE, 'basicConstraints'), 'basicConstraints', 0, 2);
  let ca = false;
  let pathLen: number | undefined;
  for (const p of parts) {
    if (p.type === Type.BOOLEAN) {
      const b = primitive(p, 'cA');
      // DER: DEFAULT FALSE must be omitted, so an explicit FALSE is an encoding error.
      if (b.length !== 1 || b[0] !== 0xff) throw new CertificateParseError('basicConstraints: cA encoded as FALSE (DER omits the default)');
      ca = true;
    } else if (p.type === Type.INTEGER) {
      pathLen = primitive(p, 'pathLenConstraint').readUIntBE(0, Math.min(6, (p.value as string).length));
    } else {
      throw new CertificateParseError('basicConstraints: unexpected field');
    }
  }
  return pathLen === undefined ? { ca } : { ca, pathLen };
}

export function decodeKeyUsage(value: Buffer): Set<KeyUsageName> {
  const bits = primitive(expectUniversal(parseDer(value, 'keyUsage'), Type.BITSTRING, 'keyUsage'), 'keyUsage');
  const out = new Set<KeyUsageName>();
  for (const [name, bit] of Object.entries(KeyUsageBit) as [KeyUsageName, number][]) {
    const octet = bits[1 + (bit >> 3)];
    if (octet !== undefined && (octet & (0x80 >> (bit & 7))) !== 0) out.add(name);
  }
  return out;
}

export function decodeExtKeyUsage(value: Buffer): string[] {
  const list = children(expectUniversal(parseDer(value, 'extKeyUsage'), Type.SEQUENCE, 'extKeyUsage'), 'extKeyUsage', 1, 100);
  return list.map((n) => readOid(n, 'extKeyUsage'));
}

export interface GeneralNames {
  uris: string[];
  dnsNames: string[];
  /** Other GeneralName kinds (IP, email, directoryName...), by tag number. */
  other: number[];
}

export function decodeSubjectAltName(value: Buffer): GeneralNames {
  const list = children(expectUniversal(parseDer(value, 'subjectAltName'), Type.SEQUENCE, 'subjectAltName'), 'subjectAltName', 1, 1000);
  const out: GeneralNames = { uris: [], dnsNames: [], other: [] };
  for (const n of list) {
    if (n.tagClass !== Class.CONTEXT_SPECIFIC) throw new CertificateParseError('subjectAltName: not a GeneralName');
    if (n.type === 6 && typeof n.value === 'string') out.uris.push(n.value);
    else if (n.type === 2 && typeof n.value === 'string') out.dnsNames.push(n.value);
    else out.other.push(n.type);
  }
  return out;
}

export function decodeSubjectKeyId(value: Buffer): Buffer {
  return primitive(expectUniversal(parseDer(value, 'subjectKeyIdentifier'), Type.OCTETSTRING, 'subjectKeyIdentifier'), 'subjectKeyIdentifier');
}

export function decodeAuthorityKeyId(value: Buffer): Buffer | undefined {
  const parts = children(expectUniversal(parseDer(value, 'authorityKeyIdentifier'), Type.SEQUENCE, 'authorityKeyIdentifier'), 'authorityKeyIdentifier', 0, 3);
  const keyId = parts.find((p) => p.tagClass === Class.CONTEXT_SPECIFIC && p.type === 0);
  return keyId && typeof keyId.value === 'string' ? bytes(keyId.value) : undefined;
}

export function findExtension(cert: ParsedCertificate, extOid: string): ParsedExtension | undefined {
  return cert.extensions.find((e) => e.oid === extOid);
}

export const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.subjectKeyIdentifier, OID.keyUsage, OID.subjectAltName, OID.basicConstraints,
  OID.nameConstraints, OID.authorityKeyIdentifier, OID.extKeyUsage,
]);
