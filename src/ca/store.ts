import { X509Certificate, createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { link, mkdir, open, readFile, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic } from '../common/atomic-file.js';
import type { Logger } from '../common/logger.js';
import { CaMaterialError, errorMessage } from './errors.js';
import { parseJournal, serializeJournal } from './journal.js';
import { formatLockOwner, judgeLockOwner, parseLockOwner, systemProcessProbe, type LockVerdict, type ProcessProbe } from './lock-owner.js';
import { keyTypeOf, rsaKeyProblem } from './keys.js';
import { decodePemOf } from './pem.js';
import type { MintedRoot } from './root-mint.js';
import type { Journal, RootRecord } from './rotation.js';
import { fingerprint256, LocalKeySigner, signingCertificate } from './signer.js';
import { validateSigningCertificate } from './svid-validator.js';

/**
 * The built-in CA's files in the data dir:
 *
 *   <data-dir>/ca/journal.json             rotation journal (which roots, when each signs)
 *   <data-dir>/ca/roots/root-N/ca-cert.pem  a self-signed root (Istio's file name)
 *   <data-dir>/ca/roots/root-N/ca-key.pem   its PKCS#8 key, mode 0600
 *   <data-dir>/ca/.lock                     held while the journal or roots are written
 *
 * Every write is atomic (src/common/atomic-file.ts: temp file, fsync, rename, dir fsync),
 * key and certificate files are written exclusively (never replaced), and reading never
 * writes: material that fails a check stops start-up with the file named and untouched.
 */

export const CA_SUBDIR = 'ca';
export const JOURNAL_FILE = 'journal.json';
export const ROOTS_SUBDIR = 'roots';
export const CERT_FILE = 'ca-cert.pem';
export const KEY_FILE = 'ca-key.pem';
const LOCK_FILE = '.lock';

export interface LoadedRoot {
  record: RootRecord;
  certPem: string;
  signer: LocalKeySigner;
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new CaMaterialError(`cannot read ${what} ${file}: ${code === 'ENOENT' ? 'file is missing' : `${code} (${errorMessage(e)})`}`, file, { cause: e });
  }
}

const LOCK_TEMP = /^\.lock\.[0-9a-f]{12}\.tmp$/;

/**
 * A lock's temporary file lives for one link(2); one older than a minute was left by a process
 * killed in between. It holds only a PID, never CA material: removed by the next lock holder.
 */
async function removeStaleLockTemps(caDir: string): Promise<void> {
  const names = await readdir(caDir).catch(() => [] as string[]);
  for (const name of names.filter((n) => LOCK_TEMP.test(n))) {
    const path = join(caDir, name);
    const age = await stat(path).then((st) => Date.now() - st.mtimeMs, () => 0);
    if (age > 60_000) await unlink(path).catch(() => undefined);
  }
}

/** A lock naming no PID: an older meshd between creating and writing it, or one that crashed there. */
async function judgeUnnamed(lockPath: string): Promise<LockVerdict> {
  const age = await stat(lockPath).then((st) => Date.now() - st.mtimeMs, () => 0);
  return age > 5000 ? { stale: true, reason: 'it names no process and has not changed for 5 s' } : { stale: false };
}

/**
 * Creates the lock file with its whole content in one step: written to a temporary name, then
 * link(2)ed to the lock's name, which fails with EEXIST if the lock exists. A reader never sees
 * a lock without its holder. False when the lock is held.
 */
async function createLockFile(lockPath: string, content: string): Promise<boolean> {
  const tmp = `${lockPath}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, lockPath);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    // A file system without hard links: O_EXCL create, then write (a reader may see it empty for a moment).
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    try {
      const fh = await open(lockPath, 'wx', 0o600);
      try { await fh.writeFile(content); } finally { await fh.close(); }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

export class RootStore {
  readonly caDir: string;
  readonly journalPath: string;
  private inProcess: Promise<unknown> = Promise.resolve();

  constructor(readonly dataDir: string, private readonly logger: Logger, private readonly probe: ProcessProbe = systemProcessProbe()) {
    this.caDir = join(dataDir, CA_SUBDIR);
    this.journalPath = join(this.caDir, JOURNAL_FILE);
  }

  certPath(id: string): string {
    return join(this.caDir, ROOTS_SUBDIR, id, CERT_FILE);
  }

  keyPath(id: string): string {
    return join(this.caDir, ROOTS_SUBDIR, id, KEY_FILE);
  }

  /** The journal, or undefined when this data dir has never held a CA. */
  async readJournal(): Promise<{ journal: Journal; text: string } | undefined> {
    let text: string;
    try {
      text = await readFile(this.journalPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CaMaterialError(`cannot read CA journal ${this.journalPath}: ${errorMessage(e)}`, this.journalPath, { cause: e });
    }
    try {
      return { journal: parseJournal(text), text };
    } catch (e) {
      throw new CaMaterialError(`CA journal ${this.journalPath} is corrupt: ${errorMessage(e)}`, this.journalPath, { cause: e });
    }
  }

  async writeJournal(journal: Journal): Promise<void> {
    await writeFileAtomic(this.journalPath, serializeJournal(journal), { mode: 0o644 });
  }

  /** Root directories present on disk (to refuse creating a CA over unexplained material). */
  async rootDirectories(): Promise<string[]> {
    try {
      return (await readdir(join(this.caDir, ROOTS_SUBDIR))).filter((n) => !n.startsWith('.'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  /** Key first, then certificate, both exclusive: an existing file is never replaced. */
  async writeRoot(id: string, root: MintedRoot): Promise<void> {
    await writeFileAtomic(this.keyPath(id), root.key.privateKeyPem, { mode: 0o600, exclusive: true });
    await writeFileAtomic(this.certPath(id), root.certPem, { mode: 0o644, exclusive: true });
  }

  /** Reads one root and checks everything about it; a failure names the file. */
  async loadRoot(record: RootRecord, trustDomain: string): Promise<LoadedRoot> {
    const certFile = this.certPath(record.id);
    const keyFile = this.keyPath(record.id);
    const certPem = await readText(certFile, 'root certificate');
    const loaded = await checkRootMaterial({ record, certPem, readKey: () => readText(keyFile, 'root key'), trustDomain, certName: certFile, keyName: keyFile, journalName: this.journalPath });
    const mode = (await stat(keyFile)).mode & 0o777;
    if ((mode & 0o077) !== 0) this.logger.warn({ file: keyFile, mode: mode.toString(8) }, 'root key file is readable by others; it should be 0600');
    return loaded;
  }

  /**
   * Serialises writers across processes (serve and `meshd ca rotate-root`) with a lock file
   * created whole by link(2), which fails if the file exists. It names its holder by PID,
   * start time, boot id and a per-process token (lock-owner.ts); a lock whose holder is gone,
   * including one naming a reused PID such as our own PID 1 in a container, is taken over.
   */
  async withLock<T>(fn: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
    const run = this.inProcess.then(() => this.lockAndRun(fn, timeoutMs));
    this.inProcess = run.catch(() => undefined);
    return run;
  }

  private async lockAndRun<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
    const lockPath = join(this.caDir, LOCK_FILE);
    const mine = formatLockOwner(this.probe.self);
    const deadline = Date.now() + timeoutMs;
    await mkdir(this.caDir, { recursive: true, mode: 0o700 });
    for (;;) {
      if (await createLockFile(lockPath, mine)) break;
      let text: string;
      try {
        text = await readFile(lockPath, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
        throw new CaMaterialError(`cannot read CA lock ${lockPath}: ${errorMessage(e)}`, lockPath, { cause: e });
      }
      const holder = parseLockOwner(text);
      const verdict = holder !== undefined ? judgeLockOwner(holder, this.probe) : await judgeUnnamed(lockPath);
      if (verdict.stale) {
        // Only the file we judged: another process may have taken the stale lock over already.
        if ((await readFile(lockPath, 'utf8').catch(() => undefined)) === text) {
          await unlink(lockPath).catch(() => undefined);
          this.logger.warn({ file: lockPath, pid: holder?.pid ?? null, reason: verdict.reason }, 'taking over a stale CA lock');
        }
        continue;
      }
      if (Date.now() > deadline) {
        throw new CaMaterialError(`CA lock ${lockPath} is held by process ${holder?.pid ?? '?'}${holder?.startTime ? ` (started at tick ${holder.startTime})` : ''}; `
          + 'if no meshd is using this data dir, remove the file', lockPath);
      }
      // Real time, not the CA's clock: another process holds the lock, and lock files age by their mtime.
      await sleep(25);
    }
    await removeStaleLockTemps(this.caDir);
    try {
      return await fn();
    } finally {
      // Never another holder's lock (had ours been judged stale and taken over).
      if ((await readFile(lockPath, 'utf8').catch(() => undefined)) === mine) await unlink(lockPath).catch(() => undefined);
    }
  }
}

export interface RootMaterial {
  record: RootRecord;
  certPem: string;
  /** Called once the certificate checked out, so a bad certificate is reported before a missing key. */
  readKey: () => Promise<string>;
  trustDomain: string;
  /** How messages name the certificate, the key and the journal (file paths, or store rows). */
  certName: string;
  keyName: string;
  journalName: string;
}

/**
 * Checks a root's certificate and key against the journal's record: the fingerprint it
 * records, a usable self-signed root of this trust domain, a key that matches and is of the
 * recorded type. A failure names the material; nothing is changed.
 */
export async function checkRootMaterial(m: RootMaterial): Promise<LoadedRoot> {
  const { record, certPem, trustDomain, certName: certFile, keyName: keyFile } = m;
  let der: Buffer;
  try {
    const blocks = decodePemOf(certPem, 'CERTIFICATE', certFile);
    if (blocks.length !== 1) throw new Error(`${certFile}: expected one certificate, found ${blocks.length}`);
    der = blocks[0]!;
  } catch (e) {
    throw new CaMaterialError(`root certificate ${certFile} is corrupt: ${errorMessage(e)}`, certFile, { cause: e });
  }
  if (fingerprint256(der) !== record.fingerprint256) {
    throw new CaMaterialError(`root certificate ${certFile} is not the one ${m.journalName} records (SHA-256 ${fingerprint256(der)}, journal says ${record.fingerprint256})`, certFile);
  }
  const check = validateSigningCertificate(der, { trustDomain, selfSigned: true });
  if (!check.valid) throw new CaMaterialError(`root certificate ${certFile} is not a usable root for ${trustDomain}: ${check.errors.join('; ')}`, certFile);
  const x509 = new X509Certificate(der);
  if (!x509.verify(x509.publicKey)) throw new CaMaterialError(`root certificate ${certFile}: self-signature does not verify`, certFile);
  const keyPem = await m.readKey();
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new CaMaterialError(`root key ${keyFile} is corrupt: not a readable unencrypted private key (${errorMessage(e)})`, keyFile, { cause: e });
  }
  if (!x509.checkPrivateKey(key)) throw new CaMaterialError(`root key ${keyFile} does not match certificate ${certFile}`, keyFile);
  const problem = rsaKeyProblem(key);
  if (problem) throw new CaMaterialError(`root key ${keyFile} is refused: ${problem}`, keyFile);
  const keyType = keyTypeOf(key);
  if (keyType !== record.keyType) throw new CaMaterialError(`root key ${keyFile} is ${keyType ?? 'an unsupported type'}, journal says ${record.keyType}`, keyFile);
  return { record, certPem, signer: new LocalKeySigner(signingCertificate(der, certFile), key, keyType) };
}
