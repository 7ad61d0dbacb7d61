import { link, mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Clock } from '../common/clock.js';
import { fsyncDir } from '../common/atomic-file.js';
import { isTokenId } from './token-authority.js';

/**
 * What meshd remembers about join tokens beyond their signature: which single-use tokens have
 * been used, and which tokens were revoked before they expired. meshd asks it on every use of a
 * token, so a revocation written by `meshd token revoke` (another process) takes effect on a
 * running meshd at the token's next use. A shared store can implement the same three calls.
 */
export interface TokenLedger {
  /** Records the first use of a single-use token; false when it was used before (now or in an earlier run). */
  recordFirstUse(id: string, expiresAtMs: number): Promise<boolean>;
  isRevoked(id: string): Promise<boolean>;
  /** Idempotent: revoking a revoked token changes nothing. */
  revoke(id: string): Promise<void>;
}

export const TOKENS_DIR = 'tokens';
/** At most this many records of each kind; beyond, single use and revocation fail closed with a clear message. */
export const MAX_LEDGER_RECORDS = 100_000;
/** A use record is kept this long past its token's expiry (beyond the 30 s clock tolerance of verification). */
const USE_RECORD_MARGIN_MS = 5 * 60_000;
/** Use records of expired tokens are pruned at most this often. */
const PRUNE_EVERY_MS = 60_000;
/** A temporary file older than this is left over from a crash. */
const STALE_TEMP_MS = 60_000;

/**
 * The ledger in meshd's data dir: one file per record, `tokens/used/<id>.<exp seconds>` and
 * `tokens/revoked/<id>`. A record is written to a temporary file, fsynced, and hard-linked to its
 * name: link(2) fails with EEXIST when the name exists, so two uses of one token (in one process
 * or two) cannot both be first, and a crash leaves either the whole record or none (plus a
 * temporary file that the next open removes). The directory is fsynced after each record so a
 * restart does not forget it. Use records of expired tokens are pruned: the token is refused as
 * expired anyway.
 */
export class DataDirTokenLedger implements TokenLedger {
  private lastPruneAt = 0;
  private usedCount = 0;
  /** The revoked ids as last read, with the directory's times then. */
  private revoked: { mtimeMs: number; ctimeMs: number; ids: ReadonlySet<string> } | undefined;

  private constructor(private readonly usedDir: string, private readonly revokedDir: string, private readonly clock: Clock) {}

  static async open(dataDir: string, clock: Clock): Promise<DataDirTokenLedger> {
    const root = join(dataDir, TOKENS_DIR);
    const ledger = new DataDirTokenLedger(join(root, 'used'), join(root, 'revoked'), clock);
    for (const dir of [ledger.usedDir, ledger.revokedDir]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await removeStaleTemps(dir);
    }
    await ledger.prune();
    return ledger;
  }

  async recordFirstUse(id: string, expiresAtMs: number): Promise<boolean> {
    checkId(id);
    const now = this.clock.now();
    if (now - this.lastPruneAt >= PRUNE_EVERY_MS) await this.prune();
    if (this.usedCount >= MAX_LEDGER_RECORDS) {
      throw new Error(`the token ledger holds ${MAX_LEDGER_RECORDS} use records of unexpired single-use tokens; refusing to record more (issue fewer or shorter-lived single-use tokens)`);
    }
    const created = await createRecord(this.usedDir, `${id}.${Math.ceil(expiresAtMs / 1000)}`, `${new Date(now).toISOString()}\n`);
    if (created) this.usedCount++;
    return created;
  }

  /**
   * One stat of the revocations directory per check, and a readdir only when it changed (a
   * revocation links a file into it, which moves its mtime): a fleet reconnecting with tokens
   * costs a stat each, not a failed lookup (an ENOENT error object) each.
   */
  async isRevoked(id: string): Promise<boolean> {
    if (!isTokenId(id)) return false;
    try {
      const dir = await stat(this.revokedDir);
      const seen = this.revoked;
      if (seen === undefined || seen.mtimeMs !== dir.mtimeMs || seen.ctimeMs !== dir.ctimeMs) {
        // Stat before readdir: a revocation landing in between is either read now or moves the
        // mtime past the one kept, so the next check reads the directory again.
        const names = await readdir(this.revokedDir);
        this.revoked = { mtimeMs: dir.mtimeMs, ctimeMs: dir.ctimeMs, ids: new Set(names.filter((n) => !n.startsWith('.'))) };
      }
      return this.revoked!.ids.has(id);
    } catch (err) {
      // Unknown state of a revocation: refuse rather than let a possibly revoked token in.
      throw new Error(`cannot read the token ledger: ${(err as Error).message}`);
    }
  }

  async revoke(id: string): Promise<void> {
    checkId(id);
    const names = await readdir(this.revokedDir);
    if (names.length >= MAX_LEDGER_RECORDS) throw new Error(`the token ledger already holds ${MAX_LEDGER_RECORDS} revocations; refusing to record more`);
    await createRecord(this.revokedDir, id, `${new Date(this.clock.now()).toISOString()}\n`);
  }

  /** Removes use records of tokens that expired more than a margin ago; counts the rest. */
  private async prune(): Promise<void> {
    const now = this.clock.now();
    this.lastPruneAt = now;
    let kept = 0;
    for (const name of await readdir(this.usedDir)) {
      const m = /\.(\d+)$/.exec(name);
      if (m === null || name.startsWith('.')) continue;
      if (Number(m[1]) * 1000 + USE_RECORD_MARGIN_MS < now) await unlink(join(this.usedDir, name)).catch(() => undefined);
      else kept++;
    }
    this.usedCount = kept;
  }
}

function checkId(id: string): void {
  if (!isTokenId(id)) throw new Error(`"${id.slice(0, 64)}" is not a token id (the jti printed by \`meshd token issue\`)`);
}

/** Writes `content` under `name` unless the name exists; true when this call created it. */
async function createRecord(dir: string, name: string, content: string): Promise<boolean> {
  const tmp = join(dir, `.${randomBytes(8).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, join(dir, name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(dir);
  return true;
}

/** File times are the system's, not meshd's clock. */
async function removeStaleTemps(dir: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(dir)) {
    if (!name.startsWith('.') || !name.endsWith('.tmp')) continue;
    const path = join(dir, name);
    try {
      if (now - (await stat(path)).mtimeMs > STALE_TEMP_MS) await unlink(path);
    } catch { /* gone already */ }
  }
}
