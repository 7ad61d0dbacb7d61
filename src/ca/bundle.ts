import { X509Certificate } from 'node:crypto';
import type { TrustBundle } from './types.js';

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

function rootJwk(pem: string): X509SvidJwk {
  const cached = jwkCache.get(pem);
  if (cached) return cached;
  const cert = new X509Certificate(pem);
  const key = cert.publicKey.export({ format: 'jwk' });
  const jwk: X509SvidJwk = { kty: String(key.kty), use: 'x509-svid', x5c: [cert.raw.toString('base64')] };
  // Public parameters only, in RFC 7518's names.
  for (const p of ['crv', 'x', 'y', 'n', 'e'] as const) if (typeof key[p] === 'string') jwk[p] = key[p];
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
