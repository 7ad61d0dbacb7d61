import type pg from 'pg';
import type { StoreTopic } from '../change-feed.js';
import { NotLeaderError, StoreUnavailableError } from '../errors.js';
import type { Fence } from '../leader.js';
import { NOTIFY_CHANNEL } from './change-feed.js';
import { isConnectionError } from './connection-errors.js';

export type Sql = pg.PoolClient;

/** Ends a write transaction without writing, handing `value` back to the caller. */
export type Rollback<T> = (value: T) => never;

class RollbackSignal {
  constructor(readonly value: unknown) {}
}

export interface WriteOptions {
  /** Topics announced to every replica when the transaction commits. */
  notify?: readonly StoreTopic[];
  /** The writer's leadership: the write happens only while no newer leader exists. */
  fence?: Fence;
}

/**
 * Queries and transactions on the pool, with the store's error rules: a failure to reach the
 * store becomes StoreUnavailableError (saying whether a write may have landed); anything else
 * (a constraint, a refused value) is thrown as it came and the transaction is rolled back.
 */
export class Database {
  constructor(private readonly pool: pg.Pool) {}

  /** `snapshot`: every query in `fn` sees the same committed state (REPEATABLE READ). */
  async read<T>(fn: (sql: Sql) => Promise<T>, options: { snapshot?: boolean } = {}): Promise<T> {
    return this.withClient('read', async (client) => {
      if (!options.snapshot) return fn(client);
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        if (!isConnectionError(err)) await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /**
   * Runs `fn` in a transaction. NOTIFY inside a transaction is delivered when it commits and
   * not at all when it rolls back (PostgreSQL docs, NOTIFY), so replicas hear only of changes
   * that happened.
   */
  async write<T>(fn: (sql: Sql, rollback: Rollback<T>) => Promise<T>, options: WriteOptions = {}): Promise<T> {
    let committing = false;
    try {
      return await this.withClient('write', async (client) => {
        await client.query('BEGIN');
        try {
          if (options.fence) await checkFence(client, options.fence);
          const result = await fn(client, (value) => { throw new RollbackSignal(value); });
          for (const topic of new Set(options.notify ?? [])) await client.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, topic]);
          committing = true;
          await client.query('COMMIT');
          return result;
        } catch (err) {
          if (!isConnectionError(err)) await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      });
    } catch (err) {
      if (err instanceof RollbackSignal) return err.value as T;
      if (err instanceof StoreUnavailableError && committing) throw new StoreUnavailableError('unknown', err.cause);
      throw err;
    }
  }

  private async withClient<T>(kind: 'read' | 'write', fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw isConnectionError(err) ? new StoreUnavailableError(kind === 'read' ? 'read' : 'unchanged', err) : err;
    }
    // pg emits 'error' on a client whose connection fails even between queries; the pool
    // listens only while the client is idle, and an unheard 'error' would end the process.
    // The failure reaches the caller anyway: the next query on the client is refused.
    let broken = false;
    const onError = (): void => { broken = true; };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      broken = true;
      throw new StoreUnavailableError(kind === 'read' ? 'read' : 'unchanged', err);
    } finally {
      client.off('error', onError);
      // A client whose connection failed is destroyed rather than handed to the next caller.
      client.release(broken ? true : undefined);
    }
  }
}

async function checkFence(client: Sql, fence: Fence): Promise<void> {
  // FOR SHARE: a new leader's term increment waits for this transaction, and this one waits
  // for an increment under way, so a fenced write is ordered entirely before or after it.
  const { rows } = await client.query<{ term: string }>('SELECT term FROM meshd_leader WHERE id = 1 FOR SHARE');
  const term = Number(rows[0]?.term ?? 0);
  if (term !== fence.term) throw new NotLeaderError(fence.term, term);
}
