import { createPrivateKey } from 'node:crypto';
import { lstat, readdir, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDir } from '../common/atomic-file.js';
import type { Logger } from '../common/logger.js';
import { CaMaterialError, errorMessage } from './errors.js';
import { keyTypeOf, ROOT_KEY_TYPES } from './keys.js';
import { decodePemOf } from './pem.js';
import { initialJournal, type Journal, type RootRecord } from './rotation.js';
import { signingCertificate } from './signer.js';
import { CERT_FILE, KEY_FILE, ROOTS_SUBDIR, type RootStore } from './store.js';

/**
 * A first start killed while it created the CA leaves, in this order (store.writeRoot, then
 * the journal, every file through common/atomic-file.ts):
 *
 *   roots/root-1/                      created, maybe empty
 *   roots/root-1/.ca-key.pem.<x>.tmp   key being written (maybe partial)
 *   roots/root-1/ca-key.pem            key in place
 *   roots/root-1/.ca-cert.pem.<x>.tmp  certificate being written
 *   roots/root-1/ca-cert.pem           certificate in place
 *   .journal.json.<x>.tmp              journal being written; journal.json once renamed
 *
 * Without journal.json no process has signed with root-1: meshd signs only with roots a journal
 * names. So the next start, under the CA lock:
 * - completes root-1 when key and certificate are both there, valid for this trust domain now,
 *   and match (writing the journal the first start would have written);
 * - otherwise sets root-1 aside as roots/.abandoned-<time>-root-1 (renamed, never deleted or
 *   overwritten; dot names are not roots) and creates a new root.
 * Anything an interrupted first start cannot leave (other roots, other files, a certificate
 * without its key) is unexplained material: start-up stops, as before, and nothing is moved.
 */
const ROOT_ID = 'root-1';
const TEMP_FILE = /^\.ca-(key|cert)\.pem\.[0-9a-f]{12}\.tmp$/;

export type FirstRootRecovery =
  | { action: 'completed'; journal: Journal }
  | { action: 'set-aside'; to: string };

export interface RecoveryOptions {
  trustDomain: string;
  now: number;
  logger: Logger;
}

function unexplained(store: RootStore, leftovers: readonly string[], why: string): CaMaterialError {
  return new CaMaterialError(`${store.journalPath} is missing but ${join(store.caDir, ROOTS_SUBDIR)} holds ${leftovers.join(', ')} (${why}); `
    + 'refusing to create a new root over existing CA material (restore journal.json, or move the directory away to start a new CA)', store.journalPath);
}

/** Why key and certificate cannot be completed into a root, or their facts when they can. */
async function check(store: RootStore, opts: RecoveryOptions): Promise<{ problem: string } | { record: RootRecord }> {
  try {
    const blocks = decodePemOf(await readFile(store.certPath(ROOT_ID), 'utf8'), 'CERTIFICATE', CERT_FILE);
    if (blocks.length !== 1) return { problem: `${CERT_FILE} holds ${blocks.length} certificates` };
    const facts = signingCertificate(blocks[0]!);
    const keyType = keyTypeOf(createPrivateKey(await readFile(store.keyPath(ROOT_ID), 'utf8')));
    if (keyType === undefined || !ROOT_KEY_TYPES.includes(keyType)) return { problem: `${KEY_FILE} is not a supported root key` };
    if (opts.now >= facts.notAfter) return { problem: `${CERT_FILE} expired at ${new Date(facts.notAfter).toISOString()}` };
    const record = initialJournal(opts.trustDomain, { id: ROOT_ID, keyType, fingerprint256: facts.fingerprint256, notBefore: facts.notBefore, notAfter: facts.notAfter }, opts.now).roots[0]!;
    // Every check a root gets on every start: trust domain, CA profile, self-signature, key match, key rules.
    await store.loadRoot(record, opts.trustDomain);
    return { record };
  } catch (e) {
    // A file that cannot be read (permissions, I/O) says nothing about the root: stop, move nothing.
    const code = (e as NodeJS.ErrnoException).code ?? ((e as { cause?: NodeJS.ErrnoException }).cause)?.code;
    if (code !== undefined && /^E[A-Z]+$/.test(code)) throw new CaMaterialError(`cannot check ${join(store.caDir, ROOTS_SUBDIR, ROOT_ID)}, which an interrupted first start left: ${errorMessage(e)}`, store.journalPath, { cause: e });
    return { problem: errorMessage(e) };
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

/** roots/.abandoned-<time>-root-1, or with -2, -3, … when that name is taken: never over anything. */
async function setAside(store: RootStore, now: number): Promise<string> {
  const from = join(store.caDir, ROOTS_SUBDIR, ROOT_ID);
  const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  for (let n = 1; ; n++) {
    const to = join(dirname(from), `.abandoned-${stamp}-${ROOT_ID}${n === 1 ? '' : `-${n}`}`);
    if (await exists(to)) continue;
    await rename(from, to);
    await fsyncDir(dirname(from));
    return to;
  }
}

/**
 * Deals with roots/ when journal.json is missing (called under the CA lock, before a first root
 * is created). Throws CaMaterialError for material an interrupted first start cannot explain.
 */
export async function recoverFirstRoot(store: RootStore, leftovers: readonly string[], opts: RecoveryOptions): Promise<FirstRootRecovery> {
  if (leftovers.length !== 1 || leftovers[0] !== ROOT_ID) throw unexplained(store, leftovers, 'more than an interrupted first start leaves');
  const dir = join(store.caDir, ROOTS_SUBDIR, ROOT_ID);
  const entries = (await readdir(dir, { withFileTypes: true }).catch((e: unknown) => {
    throw unexplained(store, leftovers, `cannot list ${dir}: ${errorMessage(e)}`);
  }));
  const names = entries.map((e) => e.name).sort();
  const stray = entries.find((e) => !e.isFile() || (e.name !== KEY_FILE && e.name !== CERT_FILE && !TEMP_FILE.test(e.name)));
  if (stray) throw unexplained(store, leftovers, `${join(dir, stray.name)} is not a file a first start writes`);
  const hasKey = names.includes(KEY_FILE);
  const hasCert = names.includes(CERT_FILE);
  if (hasCert && !hasKey) throw unexplained(store, leftovers, `${CERT_FILE} without ${KEY_FILE}: a first start writes the key first`);

  const { logger } = opts;
  if (hasKey && hasCert) {
    const checked = await check(store, opts);
    if ('record' in checked) {
      const { record } = checked;
      const journal: Journal = { version: 1, trustDomain: opts.trustDomain, roots: [record] };
      await store.writeJournal(journal);
      logger.warn({ dir, journal: store.journalPath, files: names, fingerprint: record.fingerprint256, keyType: record.keyType, notAfter: new Date(record.notAfter).toISOString() },
        `completed ${ROOT_ID}, which an interrupted first start left without a journal: its key and certificate check out, and ${store.journalPath} now names it`);
      return { action: 'completed', journal };
    }
    const to = await setAside(store, opts.now);
    logger.warn({ dir, to, files: names, reason: checked.problem },
      `set aside ${ROOT_ID}, which an interrupted first start left unusable (${checked.problem}): moved to ${to}; creating a new root`);
    return { action: 'set-aside', to };
  }
  const to = await setAside(store, opts.now);
  const what = hasKey ? `${KEY_FILE} without ${CERT_FILE}` : names.length === 0 ? 'an empty directory' : `only temporary files (${names.join(', ')})`;
  logger.warn({ dir, to, files: names, reason: what },
    `set aside ${ROOT_ID}, which an interrupted first start left incomplete (${what}); nothing was signed with it: moved to ${to}; creating a new root`);
  return { action: 'set-aside', to };
}
