import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { StoreKeyError } from './errors.js';

/**
 * Private keys in the store are sealed with a key-encryption key (KEK) that never enters
 * the database, so a dump or a backup of the database alone reveals no key.
 *
 * AES-256-GCM (NIST SP 800-38D) with a fresh random 96-bit nonce per seal. The row's identity
 * (table and primary key) is the associated data: a sealed key copied into another row fails
 * authentication instead of decrypting. Each sealed value names the id of the KEK that sealed
 * it, so a KEK can be rotated (new values sealed with the first key of the ring, older ones
 * still opened by the others) and a wrong key file is reported as such, never as garbage.
 *
 * Sealed form (text, safe in any column): `kek1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`.
 */

export const KEK_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const PREFIX = 'kek1';

export type RandomBytes = (size: number) => Buffer;

/** A KEK's id: derived from the key (HMAC, one way), 16 hex digits; reveals nothing of it. */
export function keyIdOf(key: Buffer): string {
  return createHmac('sha256', key).update('meshd store key id v1').digest('hex').slice(0, 16);
}

/** Where a sealed value belongs: its table and primary key. */
export interface SealedRow {
  table: string;
  id: string;
}

function associatedData(row: SealedRow): Buffer {
  return Buffer.from(`meshd-store:${row.table}:${row.id}`, 'utf8');
}

export class KeyRing {
  private readonly keys = new Map<string, Buffer>();
  /** The id of the key new values are sealed with. */
  readonly currentId: string;

  /** `keys[0]` seals; every key opens. */
  constructor(keys: readonly Buffer[], private readonly random: RandomBytes) {
    if (keys.length === 0) throw new StoreKeyError('the key ring is empty');
    for (const key of keys) {
      if (key.length !== KEK_BYTES) throw new StoreKeyError(`a key-encryption key must be ${KEK_BYTES} bytes, not ${key.length}`);
      const id = keyIdOf(key);
      if (this.keys.has(id)) throw new StoreKeyError(`key id ${id} appears twice`);
      this.keys.set(id, Buffer.from(key));
    }
    this.currentId = keyIdOf(keys[0]!);
  }

  get ids(): string[] {
    return [...this.keys.keys()];
  }

  seal(plaintext: string, row: SealedRow): string {
    const nonce = this.random(NONCE_BYTES);
    if (nonce.length !== NONCE_BYTES) throw new Error(`the random source returned ${nonce.length} bytes, not ${NONCE_BYTES}`);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentId)!, nonce);
    cipher.setAAD(associatedData(row));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${PREFIX}:${this.currentId}:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url')}`;
  }

  /** The key id a sealed value names (undefined when it is not a sealed value at all). */
  static keyIdOfSealed(sealed: string): string | undefined {
    const parts = sealed.split(':');
    return parts.length === 3 && parts[0] === PREFIX ? parts[1] : undefined;
  }

  open(sealed: string, row: SealedRow): string {
    const where = `${row.table} ${row.id}`;
    const parts = sealed.split(':');
    if (parts.length !== 3 || parts[0] !== PREFIX) throw new StoreKeyError(`the sealed key of ${where} is not in the ${PREFIX} form`);
    const [, keyId, body] = parts as [string, string, string];
    const key = this.keys.get(keyId);
    if (!key) {
      throw new StoreKeyError(`the store's keys were encrypted with key id ${keyId}; --store-key-file holds ${this.ids.join(', ')} (${where})`);
    }
    const bytes = Buffer.from(body, 'base64url');
    if (bytes.length < NONCE_BYTES + TAG_BYTES) throw new StoreKeyError(`the sealed key of ${where} is truncated`);
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, NONCE_BYTES));
    decipher.setAAD(associatedData(row));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new StoreKeyError(`the sealed key of ${where} does not authenticate under key id ${keyId}: it was altered or belongs to another row`, { cause: err });
    }
  }
}
