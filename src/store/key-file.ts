import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { writeFileAtomic } from '../common/atomic-file.js';
import { StoreKeyError } from './errors.js';
import { KEK_BYTES, KeyRing, type RandomBytes } from './key-ring.js';

/**
 * The store's key file (`--store-key-file`): one or more key-encryption keys, each 32 random
 * bytes written as one line of standard base64 (44 characters). Blank lines and lines that
 * start with `#` are ignored. The first key seals new values; the others still open values
 * sealed before a key rotation.
 *
 * It must be a regular file that neither group nor others can read or write (mode 0600 or
 * stricter): the store's private keys are only as safe as this file.
 */

/** Far more than a ring of keys needs; reading stops there. */
const MAX_FILE_BYTES = 16 * 1024;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

export async function readStoreKeyFile(path: string, random: RandomBytes): Promise<KeyRing> {
  let text: string;
  // The mode is checked with fstat on the handle that is then read, so the file cannot be
  // swapped between the check and the read.
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new StoreKeyError(`cannot read --store-key-file ${path}: ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new StoreKeyError(`--store-key-file ${path} is not a regular file`);
    const mode = st.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new StoreKeyError(`--store-key-file ${path} has mode ${mode.toString(8).padStart(4, '0')}, so group or others can use it; make it readable by its owner only (chmod 600)`);
    }
    if (st.size > MAX_FILE_BYTES) throw new StoreKeyError(`--store-key-file ${path} is ${st.size} bytes; a key file is at most ${MAX_FILE_BYTES}`);
    const buf = Buffer.alloc(MAX_FILE_BYTES + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    text = buf.subarray(0, bytesRead).toString('utf8');
    buf.fill(0);
  } finally {
    await handle.close();
  }
  return new KeyRing(parseKeyLines(text, path), random);
}

function parseKeyLines(text: string, path: string): Buffer[] {
  const keys: Buffer[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    // The line itself is never quoted in the error: it may be a key with a typo.
    if (!BASE64_KEY.test(line)) throw new StoreKeyError(`--store-key-file ${path} line ${i + 1} is not a base64-encoded ${KEK_BYTES}-byte key`);
    keys.push(Buffer.from(line, 'base64'));
  });
  if (keys.length === 0) throw new StoreKeyError(`--store-key-file ${path} holds no key`);
  return keys;
}

/** Writes a new key file with one fresh key, mode 0600; never replaces an existing file. Returns the key's id. */
export async function createStoreKeyFile(path: string, random: RandomBytes): Promise<string> {
  const key = random(KEK_BYTES);
  const ring = new KeyRing([key], random);
  const text = `# meshd store key-encryption key (id ${ring.currentId}): keep it out of the database and its backups\n${key.toString('base64')}\n`;
  key.fill(0);
  await writeFileAtomic(path, text, { mode: 0o600, exclusive: true });
  return ring.currentId;
}
