import { generateKeyPair, generateKeyPairSync, createHash, type KeyObject } from 'node:crypto';
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
 * never the Sync form). EC P-256 generation takes ~50 µs: done inline, like a signature.
 * OpenSSL 3.0's key *encoders* are the slow part here (~70 µs for PKCS#8 PEM, ~130 µs for
 * SPKI DER, see bench/ca.ts), while JWK export takes ~6 µs; so the P-256 fast path exports
 * JWK and writes the two fixed-layout DER structures itself (test/ca/keys.test.ts checks
 * them byte for byte against OpenSSL's own encoding).
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
function p256Spki(x: Buffer, y: Buffer): Buffer {
  return sequence(P256_ALGORITHM, bitString(Buffer.concat([Buffer.from([4]), x, y])));
}

/** PKCS#8 (RFC 5208) around an RFC 5915 ECPrivateKey, laid out as OpenSSL writes it: no [0] parameters, [1] public key. */
function p256Pkcs8(d: Buffer, x: Buffer, y: Buffer): Buffer {
  const ecPrivateKey = sequence(
    smallInteger(1),
    octetString(d),
    explicit(1, bitString(Buffer.concat([Buffer.from([4]), x, y]))),
  );
  return sequence(smallInteger(0), P256_ALGORITHM, octetString(ecPrivateKey));
}

function b64url(field: string | undefined, size: number): Buffer {
  const out = Buffer.from(field ?? '', 'base64url');
  if (out.length !== size) throw new Error(`unexpected JWK field length ${out.length}`);
  return out;
}

/** Fresh EC P-256 key: ~55 µs, no OpenSSL encoder in the path. */
export function generateP256(): LeafKeyMaterial & { privateKey: KeyObject } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  const x = b64url(jwk.x, 32);
  const y = b64url(jwk.y, 32);
  const d = b64url(jwk.d, 32);
  return { keyType: 'ec-p256', privateKey, privateKeyPem: toPem('PRIVATE KEY', p256Pkcs8(d, x, y)), spki: p256Spki(x, y) };
}

/** Any supported key type, off the event loop where generation is slow. */
export async function generateKey(keyType: KeyType): Promise<SigningKeyMaterial> {
  switch (keyType) {
    case 'ec-p256':
      return generateP256();
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
  return createHash('sha1').update(spki.subarray(bits.end - bits.length + 1, bits.end)).digest();
}
