import { createECDH, createPrivateKey, generateKeyPair, hash, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { LeafKeyType, RootKeyType } from './types.js';
import { bitString, explicit, octetString, oid, sequence, smallInteger, NULL } from './der.js';
import { readHeader } from './der.js';
import { OID } from './oids.js';
import { toPem } from './pem.js';

/**
 * Key generation and key facts, with Node's native crypto (OpenSSL).
 *
 * RSA generation takes ~140 ms, so it always runs on the libuv pool (generateKeyPair,
 * never the Sync form). EC P-256 generation takes ~30-50 µs: done inline, like a signature.
 *
 * The P-256 leaf path avoids OpenSSL 3.0's key encoders, which cost more than the key
 * (~70 µs for PKCS#8 PEM, ~130 µs for SPKI DER here), and avoids KeyObject JWK export,
 * which on this Node/OpenSSL (20.20.2 / 3.0.19) deadlocks the main thread on a lock after
 * a few thousand fresh EC keys. It draws the key with ECDH (the same EC_KEY generation,
 * exposing the raw scalar and point) and writes PKCS#8 and SPKI itself; test/ca/der.test.ts
 * checks both byte for byte against OpenSSL's encoding of the same key.
 */

export type KeyType = RootKeyType | LeafKeyType;

export const ROOT_KEY_TYPES: readonly RootKeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'];
export const LEAF_KEY_TYPES: readonly LeafKeyType[] = ['ec-p256', 'rsa-2048'];

export interface LeafKeyMaterial {
  keyType: LeafKeyType;
  /** PKCS#8 PEM. Never logged. */
  privateKeyPem: string;
  /** DER SubjectPublicKeyInfo. */
  spki: Buffer;
}

export interface SigningKeyMaterial {
  keyType: KeyType;
  privateKey: KeyObject;
  privateKeyPem: string;
  spki: Buffer;
}

const generateKeyPairAsync = promisify(generateKeyPair);

const P256_ALGORITHM = sequence(oid(OID.ecPublicKey), oid(OID.prime256v1));

/** SPKI for a P-256 point (RFC 5480 §2): uncompressed 04 || X || Y. */
function p256Spki(point: Buffer): Buffer {
  return sequence(P256_ALGORITHM, bitString(point));
}

/** PKCS#8 (RFC 5208) around an RFC 5915 ECPrivateKey, laid out as OpenSSL writes it: no [0] parameters, [1] public key. */
function p256Pkcs8(d: Buffer, point: Buffer): Buffer {
  const ecPrivateKey = sequence(smallInteger(1), octetString(d), explicit(1, bitString(point)));
  return sequence(smallInteger(0), P256_ALGORITHM, octetString(ecPrivateKey));
}

// Every P-256 key has the same layout, so both encodings are constant bytes around the
// scalar and the point: computed once from the encoders above, then concatenated.
const MARK_D = Buffer.alloc(32, 0xd1);
const MARK_POINT = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 0xe2)]);
const PKCS8_TEMPLATE = p256Pkcs8(MARK_D, MARK_POINT);
const PKCS8_D_AT = PKCS8_TEMPLATE.indexOf(MARK_D);
const PKCS8_POINT_AT = PKCS8_TEMPLATE.indexOf(MARK_POINT);
const SPKI_PREFIX = p256Spki(MARK_POINT).subarray(0, -65);

/** Left-pads a big-endian scalar to the curve size (ECDH returns it without leading zeros). */
function fixed(bytes: Buffer, size: number): Buffer {
  if (bytes.length === size) return bytes;
  if (bytes.length > size) throw new Error(`EC scalar of ${bytes.length} bytes for a ${size}-byte curve`);
  return Buffer.concat([Buffer.alloc(size - bytes.length), bytes]);
}

// One ECDH object, re-keyed on every call: generateKeys() draws a fresh private key each
// time (EC_KEY_generate_key), and creating the object is a third of the cost of a key.
const ecdh = createECDH('prime256v1');

/** Fresh EC P-256 key as PKCS#8 PEM and SPKI DER, no OpenSSL encoder in the path. */
export function generateP256(): LeafKeyMaterial {
  const point = ecdh.generateKeys(); // uncompressed: 04 || X || Y
  const d = fixed(ecdh.getPrivateKey(), 32);
  const pkcs8 = Buffer.from(PKCS8_TEMPLATE);
  d.copy(pkcs8, PKCS8_D_AT);
  point.copy(pkcs8, PKCS8_POINT_AT);
  d.fill(0);
  const pem = toPem('PRIVATE KEY', pkcs8);
  pkcs8.fill(0);
  return { keyType: 'ec-p256', privateKeyPem: pem, spki: Buffer.concat([SPKI_PREFIX, point]) };
}

/** Any supported key type, off the event loop where generation is slow. */
export async function generateKey(keyType: KeyType): Promise<SigningKeyMaterial> {
  switch (keyType) {
    case 'ec-p256': {
      const key = generateP256();
      return { ...key, privateKey: createPrivateKey(key.privateKeyPem) };
    }
    case 'ec-p384': {
      const { privateKey, publicKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-384' });
      return material(keyType, privateKey, publicKey);
    }
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096': {
      const modulusLength = Number(keyType.slice(4));
      const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength, publicExponent: 0x10001 });
      return material(keyType, privateKey, publicKey);
    }
    default:
      throw new Error(`unsupported key type ${String(keyType)}`);
  }
}

function material(keyType: KeyType, privateKey: KeyObject, publicKey: KeyObject): SigningKeyMaterial {
  return {
    keyType,
    privateKey,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    spki: publicKey.export({ type: 'spki', format: 'der' }),
  };
}

/** Our name for a key ("ec-p256", "rsa-2048", ...), or undefined when it is none of ours. */
export function keyTypeOf(key: KeyObject): KeyType | undefined {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    if (details?.namedCurve === 'prime256v1') return 'ec-p256';
    if (details?.namedCurve === 'secp384r1') return 'ec-p384';
    return undefined;
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details?.modulusLength;
    if (bits === 2048 || bits === 3072 || bits === 4096) return `rsa-${bits}`;
  }
  return undefined;
}

/**
 * The one RSA public exponent meshd accepts anywhere (F4): what OpenSSL, Go, Java and every
 * CA generate, and inside FIPS 186-4 §B.3.1's 2^16 < e < 2^256. Smaller exponents are refused:
 * with e = 1, "verifying" s^e mod n is the identity, so anyone can forge a signature (a CSR's
 * proof of possession) and the private exponent is 1, known to all; e = 3 is where RSA's
 * practical attacks live (Bleichenbacher's 2006 signature forgery against lax PKCS#1 v1.5
 * checks, Coppersmith on small messages).
 */
export const RSA_PUBLIC_EXPONENT = 65537n;
/** The smallest RSA modulus meshd accepts for any key it is handed (CSRs must be exactly 2048). */
export const MIN_RSA_BITS = 2048;

/** Why an RSA public exponent is refused, or undefined for 65537. */
export function rsaExponentProblem(e: bigint): string | undefined {
  if (e === RSA_PUBLIC_EXPONENT) return undefined;
  const shown = e < 1n << 64n ? e.toString() : `of ${e.toString(2).length} bits`;
  return `RSA public exponent ${shown} is not accepted (only 65537)${e === 1n ? ': with e = 1 anyone can forge its signatures' : ''}`;
}

/**
 * Why meshd refuses this RSA key (public or private): an exponent other than 65537 or a
 * modulus under 2048 bits. Undefined for an acceptable RSA key and for keys of other families,
 * which the caller's own key-type checks judge.
 */
export function rsaKeyProblem(key: KeyObject): string | undefined {
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') return undefined;
  const { modulusLength, publicExponent } = key.asymmetricKeyDetails ?? {};
  if (publicExponent === undefined || modulusLength === undefined) return 'RSA key without a readable modulus and exponent';
  const exponent = rsaExponentProblem(publicExponent);
  if (exponent) return exponent;
  if (modulusLength < MIN_RSA_BITS) return `RSA ${modulusLength} is below the ${MIN_RSA_BITS}-bit minimum`;
  return undefined;
}

/** "EC P-384", "RSA 1024", "ed25519": for error messages. */
export function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') return `EC ${d?.namedCurve ?? 'unknown curve'}`;
  if (key.asymmetricKeyType === 'rsa') return `RSA ${d?.modulusLength ?? '?'}`;
  return String(key.asymmetricKeyType);
}

export interface SignatureAlgorithm {
  /** The AlgorithmIdentifier written twice into a certificate (TBS and outer). */
  der: Buffer;
  oid: string;
  hash: 'sha256' | 'sha384';
}

const ALGORITHMS = {
  // RFC 5758 §3.2: ECDSA AlgorithmIdentifiers have NO parameters.
  ecdsaSha256: { oid: OID.ecdsaWithSHA256, hash: 'sha256', der: sequence(oid(OID.ecdsaWithSHA256)) },
  ecdsaSha384: { oid: OID.ecdsaWithSHA384, hash: 'sha384', der: sequence(oid(OID.ecdsaWithSHA384)) },
  // RFC 4055 §5: RSA PKCS#1 v1.5 AlgorithmIdentifiers carry a NULL parameter.
  rsaSha256: { oid: OID.sha256WithRSAEncryption, hash: 'sha256', der: sequence(oid(OID.sha256WithRSAEncryption), NULL) },
} as const satisfies Record<string, SignatureAlgorithm>;

/** The signature algorithm a CA key signs with (as Go and SPIRE choose: the hash matches the curve; SHA-256 for RSA). */
export function signatureAlgorithmFor(keyType: KeyType): SignatureAlgorithm {
  switch (keyType) {
    case 'ec-p256': return ALGORITHMS.ecdsaSha256;
    case 'ec-p384': return ALGORITHMS.ecdsaSha384;
    default: return ALGORITHMS.rsaSha256;
  }
}

/**
 * Key identifier per RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT
 * STRING value (without tag, length and unused-bits octet).
 */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const outer = readHeader(spki, 0);
  const algorithm = readHeader(spki, outer.headerLength);
  const bits = readHeader(spki, algorithm.end);
  if (outer.tag !== 0x30 || algorithm.tag !== 0x30 || bits.tag !== 0x03) throw new Error('not a SubjectPublicKeyInfo');
  // crypto.hash: the one-shot form, without a Hash object per certificate.
  return hash('sha1', spki.subarray(bits.end - bits.length + 1, bits.end), 'buffer');
}
