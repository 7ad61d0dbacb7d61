import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import type { LeafKeyType } from './types.js';
import { rsaExponentProblem } from './keys.js';
import { OID } from './oids.js';
import { decodePemOf, PemError } from './pem.js';
import { decodeSubjectAltName } from './x509-parse.js';

/**
 * PKCS#10 certification requests (RFC 2986). What a CSR proves is possession of its key:
 * the signature over CertificationRequestInfo must verify with the enclosed public key.
 * Everything else it asks for (subject, SANs, extensions) is ignored: the certificate
 * carries the caller's authenticated identity, as istiod does.
 *
 * forge parses the ASN.1 (forge.pki's own CSR reader only knows RSA keys and cannot
 * verify ECDSA); Node's crypto.verify checks the signature over the exact DER bytes.
 */

export class CsrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsrError';
  }
}

export interface ParsedCsr {
  keyType: LeafKeyType;
  /** DER SubjectPublicKeyInfo, copied verbatim into the certificate. */
  spki: Buffer;
  publicKey: KeyObject;
  /** URI SANs the CSR asked for: reported in logs, never honoured. */
  requestedUris: string[];
}

type Node = forge.asn1.Asn1;
const { Class, Type } = forge.asn1;

/** @types/node-forge only declares the old boolean form; forge 1.x takes an options object. */
const fromDer = forge.asn1.fromDer as unknown as (der: string, options: { strict: boolean; parseAllBytes: boolean; decodeBitStrings: boolean }) => Node;

/** Parses with forge and insists on DER: re-encoding must give the input back (BER would not). */
function parseDer(der: Buffer, what: string): Node {
  const binary = der.toString('latin1');
  let node: Node;
  try {
    node = fromDer(binary, { strict: true, parseAllBytes: true, decodeBitStrings: false });
  } catch (e) {
    throw new CsrError(`${what} is not valid ASN.1: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (forge.asn1.toDer(node).getBytes() !== binary) throw new CsrError(`${what} is BER, not DER`);
  return node;
}

const toBytes = (node: Node): Buffer => Buffer.from(forge.asn1.toDer(node).getBytes(), 'latin1');

function readOid(node: Node | undefined, what: string): string {
  if (!node || node.tagClass !== Class.UNIVERSAL || node.type !== Type.OID || typeof node.value !== 'string') throw new CsrError(`CSR ${what} is not an OBJECT IDENTIFIER`);
  return forge.asn1.derToOid(node.value);
}

function parts(node: Node | undefined, what: string): Node[] {
  if (!node || node.tagClass !== Class.UNIVERSAL || node.type !== Type.SEQUENCE || !Array.isArray(node.value)) {
    throw new CsrError(`CSR ${what} is not a SEQUENCE`);
  }
  return node.value;
}

function binary(node: Node | undefined, what: string): Buffer {
  if (!node || typeof node.value !== 'string') throw new CsrError(`CSR ${what} is malformed`);
  return Buffer.from(node.value, 'latin1');
}

function unsigned(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** The signature hash each algorithm OID names, per key family. RSASSA-PSS and SHA-1 are not accepted. */
const SIGNATURE_ALGORITHMS: Record<string, { family: 'ec' | 'rsa'; hash: string }> = {
  [OID.ecdsaWithSHA256]: { family: 'ec', hash: 'sha256' },
  [OID.ecdsaWithSHA384]: { family: 'ec', hash: 'sha384' },
  [OID.ecdsaWithSHA512]: { family: 'ec', hash: 'sha512' },
  [OID.sha256WithRSAEncryption]: { family: 'rsa', hash: 'sha256' },
  [OID.sha384WithRSAEncryption]: { family: 'rsa', hash: 'sha384' },
  [OID.sha512WithRSAEncryption]: { family: 'rsa', hash: 'sha512' },
};

const CURVE_NAMES: Record<string, string> = {
  [OID.prime256v1]: 'P-256', [OID.secp384r1]: 'P-384', [OID.secp521r1]: 'P-521',
};

/**
 * Reads the key type straight from the SPKI and builds the KeyObject from a JWK: OpenSSL
 * 3.0's DER decoder costs ~130 µs per key here, an RSA JWK import ~4 µs.
 */
function readPublicKey(spkiNode: Node): { keyType: LeafKeyType; publicKey: KeyObject; spki: Buffer } {
  const [algorithm, bits] = parts(spkiNode, 'subjectPKInfo');
  const [algOid, params] = parts(algorithm, 'subjectPKInfo algorithm');
  const spki = toBytes(spkiNode);
  const keyOid = readOid(algOid, 'public key algorithm');
  const keyBits = binary(bits, 'subjectPublicKey');
  if (bits!.type !== Type.BITSTRING || keyBits[0] !== 0) throw new CsrError('CSR subjectPublicKey is not a whole-octet BIT STRING');
  const key = keyBits.subarray(1);
  try {
    if (keyOid === OID.ecPublicKey) {
      const curve = params && params.type === Type.OID ? readOid(params, 'EC curve') : 'explicit parameters';
      if (curve !== OID.prime256v1) throw new CsrError(`unsupported key: EC ${CURVE_NAMES[curve] ?? curve} (supported: EC P-256, RSA 2048)`);
      const publicKey = key.length === 65 && key[0] === 4
        ? createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: key.subarray(1, 33).toString('base64url'), y: key.subarray(33).toString('base64url') }, format: 'jwk' })
        : createPublicKey({ key: spki, format: 'der', type: 'spki' });
      return { keyType: 'ec-p256', publicKey, spki };
    }
    if (keyOid === OID.rsaEncryption) {
      const [n, e] = parts(forge.asn1.fromDer(key.toString('latin1')), 'RSAPublicKey');
      const modulus = unsigned(binary(n, 'RSA modulus'));
      const bitLength = modulus.length * 8 - Math.clz32(modulus[0]!) + 24;
      if (bitLength !== 2048) throw new CsrError(`unsupported key: RSA ${bitLength} (supported: EC P-256, RSA 2048)`);
      const exponent = binary(e, 'RSA exponent');
      if (e!.type !== Type.INTEGER) throw new CsrError('CSR RSA exponent is not an INTEGER');
      // Checked before the signature: with e = 1 the self-signature proves nothing (keys.ts).
      if (exponent.length === 0 || (exponent[0]! & 0x80) !== 0) throw new CsrError('unsupported key: RSA public exponent is not a positive INTEGER');
      const problem = rsaExponentProblem(BigInt(`0x${exponent.toString('hex')}`));
      if (problem) throw new CsrError(`unsupported key: ${problem}`);
      const publicKey = createPublicKey({
        key: { kty: 'RSA', n: modulus.toString('base64url'), e: unsigned(exponent).toString('base64url') },
        format: 'jwk',
      });
      return { keyType: 'rsa-2048', publicKey, spki };
    }
  } catch (err) {
    if (err instanceof CsrError) throw err;
    throw new CsrError(`CSR public key cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  const name = keyOid === OID.ed25519 ? 'Ed25519' : keyOid === OID.rsassaPss ? 'RSASSA-PSS' : keyOid;
  throw new CsrError(`unsupported key: ${name} (supported: EC P-256, RSA 2048)`);
}

function requestedUris(attributes: Node | undefined): string[] {
  const uris: string[] = [];
  if (!attributes || !Array.isArray(attributes.value)) return uris;
  for (const attr of attributes.value) {
    try {
      const [type, values] = parts(attr, 'attribute');
      if (readOid(type, 'attribute type') !== OID.extensionRequest || !Array.isArray(values!.value)) continue;
      for (const ext of parts(values!.value[0], 'extensionRequest')) {
        const fields = parts(ext, 'extension');
        if (readOid(fields[0], 'extension id') !== OID.subjectAltName) continue;
        uris.push(...decodeSubjectAltName(binary(fields[fields.length - 1], 'SAN')).uris);
      }
    } catch {
      // A malformed request attribute changes nothing we issue; the signature still has to verify.
    }
  }
  return uris;
}

export function parseCsr(pem: string): ParsedCsr {
  if (typeof pem !== 'string' || pem.trim() === '') throw new CsrError('CSR is empty');
  let ders: Buffer[];
  try {
    ders = decodePemOf(pem, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], 'CSR');
  } catch (e) {
    if (e instanceof PemError) throw new CsrError(e.message);
    throw e;
  }
  if (ders.length !== 1) throw new CsrError(`CSR: expected one CERTIFICATE REQUEST block, found ${ders.length}`);
  const root = parseDer(ders[0]!, 'CSR');
  const [info, sigAlg, sig] = parts(root, 'CertificationRequest');
  if (!sig) throw new CsrError('CSR has no signature');
  const [version, , spkiNode, attributes] = parts(info, 'CertificationRequestInfo');
  const v = binary(version, 'version');
  if (version!.type !== Type.INTEGER || v.length !== 1 || v[0] !== 0) throw new CsrError('CSR version is not v1 (0)');
  if (!spkiNode) throw new CsrError('CSR has no subjectPKInfo');
  const { keyType, publicKey, spki } = readPublicKey(spkiNode);

  let algOid: string;
  try {
    algOid = readOid(parts(sigAlg, 'signatureAlgorithm')[0], 'signature algorithm');
  } catch (e) {
    throw new CsrError(e instanceof Error ? e.message : String(e));
  }
  const alg = SIGNATURE_ALGORITHMS[algOid];
  if (!alg) throw new CsrError(`CSR signature algorithm ${algOid} is not supported (ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512)`);
  const family = keyType === 'ec-p256' ? 'ec' : 'rsa';
  if (alg.family !== family) throw new CsrError(`CSR signature algorithm ${algOid} does not match its ${family.toUpperCase()} key`);
  const sigBits = binary(sig, 'signature');
  if (sig.type !== Type.BITSTRING || sigBits[0] !== 0) throw new CsrError('CSR signature is not a whole-octet BIT STRING');
  let ok: boolean;
  try {
    ok = verify(alg.hash, toBytes(info!), publicKey, sigBits.subarray(1));
  } catch {
    ok = false;
  }
  if (!ok) throw new CsrError('CSR signature does not verify with its own public key (altered, or signed by another key)');
  return { keyType, spki, publicKey, requestedUris: requestedUris(attributes) };
}
