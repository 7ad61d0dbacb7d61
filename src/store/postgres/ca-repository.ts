import { X509Certificate } from 'node:crypto';
import type { CaCommit, CaCommitResult, CaRepository, CaState, NewRoot, StoredJournal } from '../ca-repository.js';
import { StoreInputError } from '../errors.js';
import type { KeyRing } from '../key-ring.js';
import type { Database, Sql } from './database.js';
import { byCodeUnits, int, ms, sqlState, UNIQUE_VIOLATION } from './rows.js';

const ROOT_TABLE = 'meshd_ca_root';

interface JournalRow { version: string; journal: string; updated_at: Date }
interface RootRow { id: string; cert_pem: string; sealed_key: string; key_type: string; fingerprint256: string; created_at: Date }

export class PgCaRepository implements CaRepository {
  constructor(private readonly db: Database, private readonly keys: KeyRing) {}

  async read(): Promise<CaState> {
    const { journal, roots } = await this.db.read(async (sql) => ({
      journal: await readJournal(sql),
      roots: (await sql.query<RootRow>('SELECT id, cert_pem, sealed_key, key_type, fingerprint256, created_at FROM meshd_ca_root')).rows,
    }), { snapshot: true });
    return {
      journal,
      roots: roots
        .map((r) => ({
          id: r.id,
          certPem: r.cert_pem,
          keyPem: this.keys.open(r.sealed_key, { table: ROOT_TABLE, id: r.id }),
          keyType: r.key_type,
          fingerprint256: r.fingerprint256,
          createdAt: ms(r.created_at),
        }))
        .sort((a, b) => a.createdAt - b.createdAt || byCodeUnits(a.id, b.id)),
    };
  }

  async commit(step: CaCommit): Promise<CaCommitResult> {
    checkRoots(step.newRoots);
    if (!Number.isSafeInteger(step.expectedVersion) || step.expectedVersion < 0) throw new StoreInputError(`expected journal version ${step.expectedVersion} is not a version`);
    const sealed = step.newRoots.map((r) => ({ ...r, sealedKey: this.keys.seal(r.keyPem, { table: ROOT_TABLE, id: r.id }) }));
    const at = new Date(step.at);
    return this.db.write<CaCommitResult>(async (sql, rollback) => {
      // Journal first: a writer that lost the race stops here, before touching any root.
      const moved = step.expectedVersion === 0
        ? await sql.query<JournalRow>(
          `INSERT INTO meshd_ca_journal (id, version, journal, updated_at) VALUES (1, 1, $1, $2)
           ON CONFLICT (id) DO NOTHING RETURNING version, journal, updated_at`, [step.journalText, at])
        : await sql.query<JournalRow>(
          `UPDATE meshd_ca_journal SET version = version + 1, journal = $1, updated_at = $2
           WHERE id = 1 AND version = $3 RETURNING version, journal, updated_at`, [step.journalText, at, step.expectedVersion]);
      if (moved.rows.length === 0) return rollback({ committed: false, current: await readJournal(sql) });
      for (const r of sealed) {
        try {
          await sql.query(
            'INSERT INTO meshd_ca_root (id, cert_pem, sealed_key, key_type, fingerprint256, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
            [r.id, r.certPem, r.sealedKey, r.keyType, r.fingerprint256, at],
          );
        } catch (err) {
          if (sqlState(err) === UNIQUE_VIOLATION) throw new StoreInputError(`a root with id ${r.id} or fingerprint ${r.fingerprint256} is already in the store; roots are never overwritten, and nothing was written`);
          throw err;
        }
      }
      return { committed: true, journal: journalOf(moved.rows[0]!) };
    }, { notify: ['ca'], ...(step.fence ? { fence: step.fence } : {}) });
  }
}

async function readJournal(sql: Sql): Promise<StoredJournal | undefined> {
  const row = (await sql.query<JournalRow>('SELECT version, journal, updated_at FROM meshd_ca_journal WHERE id = 1')).rows[0];
  return row ? journalOf(row) : undefined;
}

function journalOf(row: JournalRow): StoredJournal {
  return { version: int(row.version), text: row.journal, updatedAt: ms(row.updated_at) };
}

/** The store holds only roots whose record matches their certificate. */
function checkRoots(roots: readonly NewRoot[]): void {
  const ids = new Set<string>();
  for (const r of roots) {
    if (!/^[\x21-\x7e]{1,128}$/.test(r.id)) throw new StoreInputError(`root id ${JSON.stringify(r.id.slice(0, 64))} is not 1 to 128 printable characters`);
    if (ids.has(r.id)) throw new StoreInputError(`root id ${r.id} appears twice in one commit`);
    ids.add(r.id);
    let actual: string;
    try {
      actual = new X509Certificate(r.certPem).fingerprint256.replaceAll(':', '').toLowerCase();
    } catch {
      throw new StoreInputError(`root ${r.id}: the certificate is not a PEM X.509 certificate`);
    }
    if (actual !== r.fingerprint256) throw new StoreInputError(`root ${r.id}: fingerprint ${r.fingerprint256} is not the certificate's (${actual})`);
    if (!r.keyPem.includes('PRIVATE KEY')) throw new StoreInputError(`root ${r.id}: the key is not a PEM private key`);
  }
}
