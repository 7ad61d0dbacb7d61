import t from 'tap';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createStoreKeyFile, readStoreKeyFile } from '../../src/store/key-file.js';
import { KeyRing, keyIdOf } from '../../src/store/key-ring.js';
import { tempDir } from '../ca/helpers.js';

const systemRandom = (size: number): Buffer => randomBytes(size);
const ROW = { table: 'meshd_ca_root', id: 'root-1' };
const PEM = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';

t.test('a sealed key opens to the same text, names its key id, and never repeats (random nonce)', async (t) => {
  const ring = new KeyRing([randomBytes(32)], systemRandom);
  const a = ring.seal(PEM, ROW);
  const b = ring.seal(PEM, ROW);
  t.not(a, b, 'two seals of one text differ');
  t.match(a, new RegExp(`^kek1:${ring.currentId}:[A-Za-z0-9_-]+$`));
  t.notMatch(a, /PRIVATE KEY/);
  t.equal(KeyRing.keyIdOfSealed(a), ring.currentId);
  t.equal(ring.open(a, ROW), PEM);
});

t.test('a sealed key moved to another row, or altered, is refused with a clear error, never garbage', async (t) => {
  const ring = new KeyRing([randomBytes(32)], systemRandom);
  const sealed = ring.seal(PEM, ROW);
  t.throws(() => ring.open(sealed, { table: 'meshd_ca_root', id: 'root-2' }), {
    name: 'StoreKeyError', message: /^the sealed key of meshd_ca_root root-2 does not authenticate under key id [0-9a-f]{16}: it was altered or belongs to another row$/,
  });
  t.throws(() => ring.open(sealed, { table: 'meshd_token_key', id: 'root-1' }), { message: /belongs to another row/ });
  const [prefix, id, body] = sealed.split(':') as [string, string, string];
  const bytes = Buffer.from(body, 'base64url');
  bytes[20]! ^= 1;
  t.throws(() => ring.open(`${prefix}:${id}:${bytes.toString('base64url')}`, ROW), { message: /does not authenticate/ });
  t.throws(() => ring.open(`${prefix}:${id}:AAAA`, ROW), { message: /truncated/ });
  t.throws(() => ring.open('-----BEGIN PRIVATE KEY-----', ROW), { message: /not in the kek1 form/ });
});

t.test('a ring without the sealing key names both key ids', async (t) => {
  const sealer = new KeyRing([randomBytes(32)], systemRandom);
  const other = new KeyRing([randomBytes(32)], systemRandom);
  t.throws(() => other.open(sealer.seal(PEM, ROW), ROW), {
    name: 'StoreKeyError',
    message: `the store's keys were encrypted with key id ${sealer.currentId}; --store-key-file holds ${other.currentId} (meshd_ca_root root-1)`,
  });
});

t.test('after a key rotation the first key seals and the older one still opens', async (t) => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const before = new KeyRing([oldKey], systemRandom).seal(PEM, ROW);
  const ring = new KeyRing([newKey, oldKey], systemRandom);
  t.equal(ring.currentId, keyIdOf(newKey));
  t.equal(ring.open(before, ROW), PEM);
  t.equal(KeyRing.keyIdOfSealed(ring.seal(PEM, ROW)), keyIdOf(newKey));
  t.throws(() => new KeyRing([oldKey, oldKey], systemRandom), { message: /appears twice/ });
  t.throws(() => new KeyRing([randomBytes(16)], systemRandom), { message: /must be 32 bytes, not 16/ });
});

t.test('createStoreKeyFile writes one base64 key, mode 0600, and never replaces a file', async (t) => {
  const file = join(tempDir(t, 'meshd-store-key-'), 'store.key');
  const id = await createStoreKeyFile(file, systemRandom);
  t.equal(statSync(file).mode & 0o777, 0o600);
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  t.equal(lines.length, 1);
  t.equal(Buffer.from(lines[0]!, 'base64').length, 32);
  const ring = await readStoreKeyFile(file, systemRandom);
  t.equal(ring.currentId, id);
  t.same(ring.ids, [id]);
  await t.rejects(createStoreKeyFile(file, systemRandom), /refusing to overwrite/);
  t.equal((await readStoreKeyFile(file, systemRandom)).currentId, id, 'the first key file is intact');
});

t.test('a key file readable or writable by group or others is refused; 0400 is accepted', async (t) => {
  const dir = tempDir(t, 'meshd-store-key-');
  const file = join(dir, 'store.key');
  await createStoreKeyFile(file, systemRandom);
  for (const mode of [0o640, 0o604, 0o660, 0o644, 0o602]) {
    chmodSync(file, mode);
    await t.rejects(readStoreKeyFile(file, systemRandom), {
      name: 'StoreKeyError',
      message: `--store-key-file ${file} has mode 0${mode.toString(8)}, so group or others can use it; make it readable by its owner only (chmod 600)`,
    }, `mode 0${mode.toString(8)}`);
  }
  chmodSync(file, 0o400);
  t.ok(await readStoreKeyFile(file, systemRandom));
});

t.test('malformed key files are refused without quoting their content', async (t) => {
  const dir = tempDir(t, 'meshd-store-key-');
  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  };
  const secretish = randomBytes(31).toString('base64');
  const short = write('short', `# a comment\n\n${secretish}\n`);
  const err = await readStoreKeyFile(short, systemRandom).catch((e: Error) => e);
  t.equal((err as Error).message, `--store-key-file ${short} line 3 is not a base64-encoded 32-byte key`);
  t.notMatch((err as Error).message, secretish);
  await t.rejects(readStoreKeyFile(write('empty', '# nothing here\n'), systemRandom), { message: /holds no key$/ });
  await t.rejects(readStoreKeyFile(write('big', 'x'.repeat(20_000)), systemRandom), { message: /is 20000 bytes; a key file is at most 16384/ });
  await t.rejects(readStoreKeyFile(join(dir, 'absent'), systemRandom), { message: /cannot read --store-key-file .*absent: no such file/ });
  const sub = join(dir, 'sub');
  mkdirSync(sub, { mode: 0o700 });
  await t.rejects(readStoreKeyFile(sub, systemRandom), { message: /is not a regular file/ });
  const two = write('two', `${randomBytes(32).toString('base64')}\n${randomBytes(32).toString('base64')}\n`);
  t.equal((await readStoreKeyFile(two, systemRandom)).ids.length, 2, 'a ring of two keys');
});
