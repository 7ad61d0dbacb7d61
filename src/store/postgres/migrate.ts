import pg from 'pg';
import type { Logger } from '../../common/logger.js';
import { describeCause, StoreSchemaError, StoreUnavailableError } from '../errors.js';
import { LOCK_NAMESPACE, MIGRATION_LOCK } from './advisory-locks.js';
import { isConnectionError } from './connection-errors.js';
import type { Migration } from './migrations/index.js';

export interface MigrationOutcome {
  /** The schema version found. */
  from: number;
  /** The schema version now. */
  to: number;
}

/**
 * Brings the database's schema up to the last of `migrations`, under an advisory lock so
 * replicas starting together do it once: the others wait, then find nothing to do. Each
 * migration runs in its own transaction (DDL is transactional in PostgreSQL) together with
 * the row that records it, so a failed one leaves the schema at the previous version.
 *
 * Refused, changing nothing: a database whose schema is newer than `migrations` knows (an
 * older meshd must not write to a schema it does not understand), or whose record of a
 * version names a different migration.
 */
export async function migrate(clientConfig: pg.ClientConfig, migrations: readonly Migration[], logger: Logger): Promise<MigrationOutcome> {
  const known = migrations[migrations.length - 1]?.version ?? 0;
  // Its own connection, ended at the end: the lock cannot outlive this function.
  const client = new pg.Client(clientConfig);
  client.on('error', () => undefined); // a lost connection also fails the query under way, which reports it
  try {
    await client.connect();
  } catch (err) {
    throw isConnectionError(err) ? new StoreUnavailableError('unchanged', err) : err;
  }
  try {
    await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS meshd_schema_version (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number; name: string }>('SELECT version, name FROM meshd_schema_version ORDER BY version');
    const from = rows.length === 0 ? 0 : rows[rows.length - 1]!.version;
    if (from > known) {
      throw new StoreSchemaError(`the store's schema is version ${from}, newer than this meshd knows (version ${known}): `
        + `a newer meshd has upgraded it; run that release (or a later one) on every replica. This one refuses to use the store and changed nothing`);
    }
    for (const row of rows) {
      const mine = migrations.find((m) => m.version === row.version);
      if (mine && mine.name !== row.name) {
        throw new StoreSchemaError(`the store's schema version ${row.version} is "${row.name}", but this meshd's version ${row.version} is "${mine.name}": they are different schemas; refusing to use the store`);
      }
    }
    for (const m of migrations.filter((m) => m.version > from)) {
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO meshd_schema_version (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (isConnectionError(err)) throw err;
        throw new StoreSchemaError(`store schema migration ${m.version} (${m.name}) failed: ${describeCause(err)}; the schema stays at version ${m.version - 1}`, { cause: err });
      }
      logger.info({ version: m.version, name: m.name }, 'migrated the store schema');
    }
    return { from, to: Math.max(from, known) };
  } catch (err) {
    throw isConnectionError(err) ? new StoreUnavailableError('unchanged', err) : err;
  } finally {
    await client.end().catch(() => undefined);
  }
}
