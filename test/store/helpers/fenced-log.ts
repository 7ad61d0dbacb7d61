import pg from 'pg';
import { Database } from '../../../src/store/postgres/database.js';
import type { Fence } from '../../../src/store/leader.js';

/**
 * A table leaders append to with fenced writes, in commit order (seq). If two replicas ever
 * wrote as leader at once, their rows would interleave: a lower term after a higher one, or
 * one term written by two holders.
 */
export const CREATE_FENCED_LOG = 'CREATE TABLE IF NOT EXISTS fenced_log (seq bigserial PRIMARY KEY, term bigint NOT NULL, holder text NOT NULL)';

export function fencedLogWriter(url: string): { append(fence: Fence, holder: string): Promise<void>; close(): Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => undefined);
  const db = new Database(pool);
  return {
    append: (fence, holder) => db.write(async (sql) => { await sql.query('INSERT INTO fenced_log (term, holder) VALUES ($1, $2)', [fence.term, holder]); }, { fence }),
    close: () => pool.end(),
  };
}

export interface FencedLogRow { seq: string; term: string; holder: string }

/** Problems with the log: terms going backwards, a term with two holders. Empty when it is sound. */
export function fencedLogProblems(rows: readonly FencedLogRow[]): string[] {
  const problems: string[] = [];
  const holders = new Map<number, string>();
  let last = 0;
  for (const row of rows) {
    const term = Number(row.term);
    if (term < last) problems.push(`seq ${row.seq}: term ${term} written after term ${last}`);
    last = Math.max(last, term);
    const holder = holders.get(term);
    if (holder !== undefined && holder !== row.holder) problems.push(`seq ${row.seq}: term ${term} written by ${row.holder} and ${holder}`);
    holders.set(term, row.holder);
  }
  return problems;
}
