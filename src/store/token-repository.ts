import type { Fence } from './leader.js';

/**
 * Join tokens' state in the store: the keys that sign them, the ids of single-use tokens
 * already used, and revocations.
 *
 * Guarantees:
 * - A signing key is written once under its id (a second write of the id is refused, the
 *   first key stays) and its private key is sealed with the key-encryption key.
 * - `consume` is atomic across replicas: of any number of concurrent consumers of one token
 *   id, exactly one is told it was first; every later one learns when it was first used.
 * - Use records and revocations carry the token's expiry, and `prune` removes only those
 *   whose token has expired (after which the token is refused for its expiry anyway).
 */

export interface StoredSigningKey {
  id: string;
  /** JOSE algorithm name, e.g. ES256. */
  algorithm: string;
  /** The PKCS#8 PEM private key, opened in this process. */
  keyPem: string;
  createdAt: number;
}

export type NewSigningKey = StoredSigningKey;

export interface TokenUse {
  /** The token's jti. */
  tokenId: string;
  /** The token's exp, in ms. */
  expiresAt: number;
  at: number;
}

export type ConsumeResult = { first: true } | { first: false; firstUsedAt: number };

export interface Revocation {
  tokenId: string;
  expiresAt: number;
  revokedAt: number;
}

export interface TokenRepository {
  /** Every signing key, oldest first. */
  signingKeys(): Promise<StoredSigningKey[]>;
  /** False when a key with this id exists (it is kept, nothing is written). */
  addSigningKey(key: NewSigningKey, fence?: Fence): Promise<boolean>;
  /** False when there was no such key. */
  removeSigningKey(id: string, fence?: Fence): Promise<boolean>;
  consume(use: TokenUse): Promise<ConsumeResult>;
  /** Idempotent: revoking a revoked token keeps the first revocation. */
  revoke(revocation: Revocation): Promise<void>;
  revocations(): Promise<Revocation[]>;
  /** True when this token id was revoked (read from the store on each call, never cached). */
  isRevoked(tokenId: string): Promise<boolean>;
  /** Removes use records and revocations of tokens that expired before `now`. */
  prune(now: number, fence?: Fence): Promise<{ uses: number; revocations: number }>;
}

/** A token id the store accepts: a jti as meshd mints them (a UUID), or any short printable id. */
export function checkTokenId(id: string): string | undefined {
  if (id.length === 0 || id.length > 128) return `a token id is 1 to 128 characters, not ${id.length}`;
  if (!/^[\x21-\x7e]+$/.test(id)) return 'a token id is printable ASCII without spaces';
  return undefined;
}
