import type { TrustBundle } from './types.js';
import { OID } from './oids.js';
import { decodePemOf } from './pem.js';
import { parseCertificate, publicKeyParts } from './x509-parse.js';

/**
 * The trust bundle in its two forms: PEM (Istio's root-cert.pem, `meshd ca root`) and the
 * SPIFFE bundle, an RFC 7517 JWK Set (SPIFFE Trust Domain and Bundle §4; X509-SVID §6),
 * served on /trust-bundle.
 */

/** spiffe_refresh_hint: how often consumers should re-fetch. SPIFFE suggests ~5 min when unset. */
export const DEFAULT_REFRESH_HINT_SECONDS = 300;

export interface X509SvidJwk {
  kty: string;
  use: 'x509-svid';
  /** Exactly one standard-base64 (not url) DER certificate; no `kid` (X509-SVID §6). */
  x5c: [string];
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
}

export interface SpiffeBundleDocument {
  keys: X509SvidJwk[];
  spiffe_sequence: number;
  spiffe_refresh_hint: number;
}

const jwkCache = new Map<string, X509SvidJwk>();

const CURVES: Record<string, { crv: string; size: number }> = {
  [OID.prime256v1]: { crv: 'P-256', size: 32 },
  [OID.secp384r1]: { crv: 'P-384', size: 48 },
  [OID.secp521r1]: { crv: 'P-521', size: 66 },
};

/** The public-key members of a JWK (RFC 7518 §6.2 EC, §6.3 RSA). */
export type PublicKeyJwk = { kty: 'EC'; crv: string; x: string; y: string } | { kty: 'RSA'; n: string; e: string };

/**
 * A SubjectPublicKeyInfo's key as JWK members; throws for a key a JWK cannot carry here.
 * Not KeyObject.export({format: 'jwk'}): for EC keys that deadlocks on this Node/OpenSSL
 * (see keys.ts).
 */
export function publicKeyJwk(spki: Buffer): PublicKeyJwk {
  const parts = publicKeyParts(spki);
  if (parts.kty === 'EC') {
    const curve = CURVES[parts.curveOid];
    if (!curve || parts.point.length !== 1 + 2 * curve.size || parts.point[0] !== 4) throw new Error(`key on curve ${parts.curveOid} cannot be written as a JWK`);
    return {
      kty: 'EC',
      crv: curve.crv,
      x: parts.point.subarray(1, 1 + curve.size).toString('base64url'),
      y: parts.point.subarray(1 + curve.size).toString('base64url'),
    };
  }
  if (parts.kty === 'RSA') return { kty: 'RSA', n: parts.n.toString('base64url'), e: parts.e.toString('base64url') };
  throw new Error(`key algorithm ${parts.algorithmOid} cannot be written as a JWK`);
}

/** The root's public key as a JWK, read from its SubjectPublicKeyInfo. */
function rootJwk(pem: string): X509SvidJwk {
  const cached = jwkCache.get(pem);
  if (cached) return cached;
  const der = decodePemOf(pem, 'CERTIFICATE', 'trust bundle')[0]!;
  const spki = parseCertificate(der, 'trust bundle root').spki;
  let key: PublicKeyJwk;
  try {
    key = publicKeyJwk(spki);
  } catch (err) {
    throw new Error(`root ${(err as Error).message}`);
  }
  // Member order as before: kty, use, x5c, then the key parameters.
  const { kty, ...params } = key;
  const jwk: X509SvidJwk = { kty, use: 'x509-svid', x5c: [der.toString('base64')], ...params };
  if (jwkCache.size > 64) jwkCache.clear();
  jwkCache.set(pem, jwk);
  return jwk;
}

/** The SPIFFE bundle document for a trust bundle: one JWK per root, oldest first. */
export function spiffeBundleDocument(bundle: TrustBundle): SpiffeBundleDocument {
  return {
    keys: bundle.rootsPem.map(rootJwk),
    spiffe_sequence: bundle.sequence,
    spiffe_refresh_hint: bundle.refreshHintSeconds,
  };
}

/** Every root concatenated: Istio's root-cert.pem. */
export function bundlePem(bundle: TrustBundle): string {
  return bundle.rootsPem.join('');
}

export function sameRoots(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((pem, i) => pem === b[i]);
}
