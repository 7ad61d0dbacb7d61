import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import type { Clock } from '../common/clock.js';
import { TOKEN_KEY_FILE, TokenAuthority } from '../auth/token-authority.js';
import type { StoredSigningKey, TokenRepository } from './token-repository.js';

/** The id of the join-token signing key every replica signs and verifies with. */
export const FIRST_TOKEN_KEY_ID = 'token-key-1';

/**
 * The token signing key in the store, created by whichever replica (or `meshd token issue`)
 * first finds none: the id is written once, so of several racing creators exactly one key
 * lands and every one of them then signs with it.
 */
export async function storeTokenKey(tokens: TokenRepository, clock: Clock): Promise<StoredSigningKey> {
  let keys = await tokens.signingKeys();
  if (keys.length === 0) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await tokens.addSigningKey({ id: FIRST_TOKEN_KEY_ID, algorithm: 'ES256', keyPem, createdAt: clock.now() });
    keys = await tokens.signingKeys();
  }
  const key = keys.find((k) => k.id === FIRST_TOKEN_KEY_ID) ?? keys[0];
  if (!key) throw new Error('the store holds no token signing key after one was added');
  if (key.algorithm !== 'ES256') throw new Error(`the store's token signing key ${key.id} is ${key.algorithm}; meshd signs join tokens with ES256`);
  return key;
}

/**
 * A TokenAuthority on the store's key. TokenAuthority reads its key from a data dir, so the
 * key is put in a fresh private directory (0700, in memory under /dev/shm where there is one),
 * read, and removed at once: it stays only in this process's memory.
 */
export async function storeTokenAuthority(tokens: TokenRepository, clock: Clock): Promise<TokenAuthority> {
  const key = await storeTokenKey(tokens, clock);
  const parent = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(join(parent, 'meshd-token-'));
  try {
    await writeFileAtomic(join(dir, TOKEN_KEY_FILE), key.keyPem, { mode: 0o600, exclusive: true });
    return await TokenAuthority.open(dir, clock);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
