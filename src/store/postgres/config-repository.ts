import {
  checkConfigDocuments, CONFIG_VERSIONS_KEPT, sameDocuments,
  type ApplyOptions, type ApplyResult, type ConfigDocument, type ConfigRepository, type ConfigSet,
} from '../config-repository.js';
import { StoreInputError } from '../errors.js';
import type { Database, Sql } from './database.js';
import { byCodeUnits, int, ms } from './rows.js';

interface SetRow { version: string; applied_at: Date; applied_by: string; name: string | null; text: string | null }

export class PgConfigRepository implements ConfigRepository {
  constructor(private readonly db: Database) {}

  current(): Promise<ConfigSet | undefined> {
    return this.db.read(readCurrent);
  }

  async apply(documents: readonly ConfigDocument[], options: ApplyOptions): Promise<ApplyResult> {
    const problems = checkConfigDocuments(documents);
    if (problems.length > 0) throw new StoreInputError(`the config set cannot be stored, nothing was written: ${problems.join('; ')}`);
    if (!Number.isSafeInteger(options.expectedVersion) || options.expectedVersion < 0) throw new StoreInputError(`expected config version ${options.expectedVersion} is not a version`);
    const docs = [...documents].sort((a, b) => byCodeUnits(a.name, b.name));
    return this.db.write<ApplyResult>(async (sql, rollback) => {
      const current = await readCurrent(sql);
      const currentVersion = current?.version ?? 0;
      if (currentVersion !== options.expectedVersion) return rollback({ outcome: 'conflict', currentVersion });
      if (current && sameDocuments(current.documents, docs)) return rollback({ outcome: 'unchanged', set: current });
      const version = currentVersion + 1;
      // Two appliers from the same version insert the same key: the second waits for the
      // first to commit, then inserts nothing and is told of the conflict.
      const inserted = await sql.query(
        'INSERT INTO meshd_config_version (version, applied_at, applied_by) VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING RETURNING version',
        [version, new Date(options.at), options.appliedBy],
      );
      if (inserted.rows.length === 0) return rollback({ outcome: 'conflict', currentVersion: (await readCurrent(sql))?.version ?? version });
      await sql.query(
        'INSERT INTO meshd_config_document (version, name, text) SELECT $1, d.name, d.text FROM unnest($2::text[], $3::text[]) AS d (name, text)',
        [version, docs.map((d) => d.name), docs.map((d) => d.text)],
      );
      await sql.query('DELETE FROM meshd_config_version WHERE version <= $1', [version - CONFIG_VERSIONS_KEPT]);
      return { outcome: 'applied', set: { version, appliedAt: options.at, appliedBy: options.appliedBy, documents: docs.map((d) => ({ name: d.name, text: d.text })) } };
    }, { notify: ['config'] });
  }
}

/** The newest version and its documents, in one statement (so from one snapshot). */
async function readCurrent(sql: Sql): Promise<ConfigSet | undefined> {
  const { rows } = await sql.query<SetRow>(
    `SELECT v.version, v.applied_at, v.applied_by, d.name, d.text
     FROM (SELECT * FROM meshd_config_version ORDER BY version DESC LIMIT 1) v
     LEFT JOIN meshd_config_document d ON d.version = v.version`,
  );
  const first = rows[0];
  if (!first) return undefined;
  const documents = rows.filter((r) => r.name !== null).map((r) => ({ name: r.name!, text: r.text! })).sort((a, b) => byCodeUnits(a.name, b.name));
  return { version: int(first.version), appliedAt: ms(first.applied_at), appliedBy: first.applied_by, documents };
}
