import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { ManagedCertificateAuthority } from '../ca/index.js';
import type { RootBackend } from '../ca/root-backend.js';
import { TokenAuthority } from '../auth/token-authority.js';
import { StoreRootBackend } from '../store/ca-root-backend.js';
import { unrefTimer } from '../store/deps.js';
import { describeCause } from '../store/errors.js';
import { openSharedStore } from '../store/open-store.js';
import type { PostgresStore, PostgresStoreOptions } from '../store/postgres/postgres-store.js';
import { redactStoreUrl } from '../store/postgres/store-url.js';
import { storeTokenAuthority } from '../store/token-key.js';

/** `--store URL --store-key-file FILE`, and the intervals tests shorten. */
export interface StoreFlags {
  url: string;
  keyFile: string | undefined;
  /** Names this replica in the store (default host-pid-random). */
  replicaId?: string;
  pollIntervalMs?: number;
  resyncIntervalMs?: number;
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
  backoff?: PostgresStoreOptions['backoff'];
  /** How often this replica writes its proxies to the store's registry (default 5 s). */
  presenceIntervalMs?: number;
}

/**
 * Where a meshd's CA roots, token signing key and mesh config come from: the data dir (and
 * --config-dir), or the shared store. With a store every replica reads the same state, follows
 * the store's change feed, and keeps serving what it last read while the store is away.
 */
export interface StateSource {
  /** The shared store, when there is one. */
  readonly store: PostgresStore | undefined;
  /** The store's URL without its password, for logs. */
  readonly location: string | undefined;
  /** This replica's name in the store (leader records, the proxy registry). */
  readonly replicaId: string | undefined;
  /** The built-in CA's roots: undefined means the data dir's. */
  readonly rootBackend: RootBackend | undefined;
  tokenAuthority(dataDir: string): Promise<TokenAuthority>;
  /** Makes the CA re-read the journal whenever it moves in the store. */
  follow(ca: ManagedCertificateAuthority): void;
  close(): Promise<void>;
}

export interface StateSourceOptions {
  store?: StoreFlags;
  logger: Logger;
  clock: Clock;
  registry: Registry;
}

export async function openStateSource(options: StateSourceOptions): Promise<StateSource> {
  const { clock, logger } = options;
  if (!options.store) {
    return {
      store: undefined, location: undefined, replicaId: undefined, rootBackend: undefined,
      tokenAuthority: (dataDir) => TokenAuthority.open(dataDir, clock), follow: () => undefined, close: async () => undefined,
    };
  }
  const flags = options.store;
  const storeLogger = logger.child({ component: 'store' });
  const replicaId = flags.replicaId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const store = await openSharedStore({
    url: flags.url,
    keyFile: flags.keyFile,
    replicaId,
    deps: { clock, random: (n) => randomBytes(n), logger: storeLogger, registry: options.registry, timer: unrefTimer },
    ...(flags.pollIntervalMs !== undefined ? { pollIntervalMs: flags.pollIntervalMs } : {}),
    ...(flags.resyncIntervalMs !== undefined ? { resyncIntervalMs: flags.resyncIntervalMs } : {}),
    ...(flags.connectTimeoutMs !== undefined ? { connectTimeoutMs: flags.connectTimeoutMs } : {}),
    ...(flags.queryTimeoutMs !== undefined ? { queryTimeoutMs: flags.queryTimeoutMs } : {}),
    ...(flags.backoff ? { backoff: flags.backoff } : {}),
  });
  let backend: StoreRootBackend;
  try {
    backend = await StoreRootBackend.open({
      ca: store.ca, feed: store.feed, leader: store.leader, health: store.health, logger: logger.child({ component: 'ca' }), location: redactStoreUrl(flags.url),
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  const leaderChanges = store.leader.onChange((fence) => {
    storeLogger.info({ replica: replicaId, term: fence?.term ?? null }, fence ? 'this replica leads: it rotates roots when due' : 'this replica no longer leads');
  });
  storeLogger.info({ store: redactStoreUrl(flags.url), replica: replicaId }, 'state comes from the shared store');
  const unfollow: Array<() => void> = [];
  const close = async (): Promise<void> => {
    for (const stop of unfollow) stop();
    leaderChanges();
    backend.close();
    await store.close();
  };
  return {
    store,
    location: redactStoreUrl(flags.url),
    replicaId,
    rootBackend: backend,
    tokenAuthority: () => storeTokenAuthority(store.tokens, clock),
    follow(ca) {
      unfollow.push(backend.onChange(() => {
        ca.refresh().catch((err: unknown) => logger.error({ err: describeCause(err) }, 'the CA journal in the store changed but cannot be adopted; still serving the last good state'));
      }));
    },
    close,
  };
}
