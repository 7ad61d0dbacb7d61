import pg from 'pg';
import { DEFAULT_BACKOFF, type BackoffOptions } from '../backoff.js';
import type { StoreDeps } from '../deps.js';
import { StoreHealth } from '../health.js';
import type { KeyRing } from '../key-ring.js';
import type { MeshStore } from '../store.js';
import { PgBundleRepository } from './bundle-repository.js';
import { PgCaRepository } from './ca-repository.js';
import { PgChangeFeed } from './change-feed.js';
import { PgConfigRepository } from './config-repository.js';
import { Database } from './database.js';
import { checkStoreKey } from './key-check.js';
import { PgLeaderElection } from './leader-election.js';
import { migrate } from './migrate.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';
import { PgProxyRegistry } from './proxy-registry.js';
import { StoreSession } from './session.js';
import { checkStoreUrl, redactStoreUrl } from './store-url.js';
import { PgTokenRepository } from './token-repository.js';

export interface PostgresStoreOptions {
  /** postgres://… */
  url: string;
  keys: KeyRing;
  /** This replica's name: leader records, the proxy registry, application_name. */
  replicaId: string;
  deps: StoreDeps;
  /** Session health query and leader poll. Default 1 s: a dead leader is replaced within about that. */
  pollIntervalMs?: number;
  /** Periodic re-read of every topic. Default 10 s: the longest a lost notification delays a change. */
  resyncIntervalMs?: number;
  /** A session query taking longer drops the session; also the pool's client-side query timeout. Default 5 s. */
  queryTimeoutMs?: number;
  /** Opening a connection. Default 2 s: how long a write waits before failing when the store does not answer. */
  connectTimeoutMs?: number;
  /** Pooled connections for reads and writes. Default 5. */
  poolSize?: number;
  backoff?: BackoffOptions;
  /** Whether this process contends for the leader lock (default true; false for a CLI command that only reads or applies). */
  contendForLeader?: boolean;
  /** The schema this code knows; tests pass others. */
  migrations?: readonly Migration[];
}

export const DEFAULT_POLL_INTERVAL_MS = 1_000;
export const DEFAULT_RESYNC_INTERVAL_MS = 10_000;
export const DEFAULT_QUERY_TIMEOUT_MS = 5_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;

/**
 * The shared store on PostgreSQL. Opening it migrates the schema (under a lock), checks that
 * the key file is the store's, and connects the session that elects the leader and carries
 * the change feed; the pool serves the repositories' reads and writes.
 */
export class PostgresStore implements MeshStore {
  private constructor(
    readonly ca: PgCaRepository,
    readonly tokens: PgTokenRepository,
    readonly config: PgConfigRepository,
    readonly bundles: PgBundleRepository,
    readonly proxies: PgProxyRegistry,
    readonly feed: PgChangeFeed,
    readonly leader: PgLeaderElection,
    readonly health: StoreHealth,
    private readonly session: StoreSession,
    private readonly pool: pg.Pool,
  ) {}

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    checkStoreUrl(options.url);
    const { deps } = options;
    const logger = deps.logger.child({ store: redactStoreUrl(options.url) });
    const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    const clientConfig: pg.ClientConfig = {
      connectionString: options.url,
      connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      application_name: `meshd ${options.replicaId}`.slice(0, 63),
      keepAlive: true,
    };
    await migrate(clientConfig, options.migrations ?? MIGRATIONS, logger);

    const pool = new pg.Pool({ ...clientConfig, max: options.poolSize ?? 5, query_timeout: queryTimeoutMs });
    // An idle pooled connection that dies (a server restart) is dropped; the next checkout opens another.
    pool.on('error', (err) => logger.debug({ err: err.message }, 'an idle store connection was lost'));
    const db = new Database(pool);
    const health = new StoreHealth(deps.registry);
    try {
      await checkStoreKey(db, options.keys, deps.clock.now());
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    const session = new StoreSession(
      // Named apart from the pool's connections, so pg_stat_activity shows which one holds the locks.
      { clientConfig: { ...clientConfig, application_name: `meshd-session ${options.replicaId}`.slice(0, 63) }, pollIntervalMs: options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS, queryTimeoutMs, backoff: options.backoff ?? DEFAULT_BACKOFF },
      { logger, random: deps.random, timer: deps.timer, health },
    );
    const feed = new PgChangeFeed(session, options.resyncIntervalMs ?? DEFAULT_RESYNC_INTERVAL_MS, { timer: deps.timer, logger });
    feed.start();
    const leader = new PgLeaderElection(session, options.replicaId, { clock: deps.clock, logger, health });
    if (options.contendForLeader !== false) leader.start();
    await session.start();
    return new PostgresStore(
      new PgCaRepository(db, options.keys), new PgTokenRepository(db, options.keys), new PgConfigRepository(db),
      new PgBundleRepository(db), new PgProxyRegistry(db), feed, leader, health, session, pool,
    );
  }

  /** Gives up the lead, stops the feed and the session, and closes the pool. */
  async close(): Promise<void> {
    await this.leader.close();
    this.feed.close();
    await this.session.close();
    await this.pool.end().catch(() => undefined);
  }
}
