/**
 * Trust bundles of federated trust domains (SPIFFE Trust Domain and Bundle, section 4:
 * a bundle endpoint serves a JWKS with `spiffe_sequence`), as last fetched by any replica,
 * so every replica serves the same foreign bundles and a restart does not forget them.
 *
 * Guarantees:
 * - One bundle per trust domain. `put` never moves a trust domain's sequence backwards: a
 *   replica that fetched an older bundle than the one stored is told what is stored instead.
 *   The same sequence may be written again (a re-fetch updates `fetchedAt`).
 * - The bundle text is kept as fetched, after checking it is a JSON object.
 */

export interface FederatedBundle {
  trustDomain: string;
  /** The SPIFFE bundle (JWKS) as JSON text. */
  bundle: string;
  sequence: number;
  fetchedAt: number;
}

export type PutBundleResult = { stored: true } | { stored: false; current: FederatedBundle };

export interface BundleRepository {
  /** Every stored bundle, by trust domain. */
  list(): Promise<FederatedBundle[]>;
  get(trustDomain: string): Promise<FederatedBundle | undefined>;
  put(bundle: FederatedBundle): Promise<PutBundleResult>;
  /** False when there was none. */
  remove(trustDomain: string): Promise<boolean>;
}

export const MAX_BUNDLE_BYTES = 1024 * 1024;

/** Why the store refuses this bundle, or undefined. */
export function checkFederatedBundle(b: FederatedBundle): string | undefined {
  // SPIFFE-ID section 2.1: a trust domain name is lowercase letters, digits, ".", "-" and "_", at most 255 characters.
  if (!/^[a-z0-9._-]{1,255}$/.test(b.trustDomain)) return `"${b.trustDomain.slice(0, 64)}" is not a trust domain name (lowercase letters, digits, ".", "-", "_")`;
  if (!Number.isSafeInteger(b.sequence) || b.sequence < 0) return `trust domain ${b.trustDomain}: sequence ${b.sequence} is not a non-negative integer`;
  if (Buffer.byteLength(b.bundle) > MAX_BUNDLE_BYTES) return `trust domain ${b.trustDomain}: the bundle is larger than ${MAX_BUNDLE_BYTES} bytes`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(b.bundle);
  } catch {
    return `trust domain ${b.trustDomain}: the bundle is not JSON`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `trust domain ${b.trustDomain}: the bundle is not a JSON object`;
  return undefined;
}
