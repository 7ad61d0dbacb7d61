import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { systemClock } from '../common/clock.js';
import { createLogger } from '../common/logger.js';
import { unrefTimer } from '../store/deps.js';
import type { PostgresStore } from '../store/postgres/postgres-store.js';
import { absolute } from './options.js';

export interface StoreCliFlags {
  store?: string;
  storeKeyFile?: string;
  logLevel?: string;
}

/**
 * The shared store for one CLI command: no leader contention (a short-lived command never does
 * the replicas' once-only work), logs on stderr. Closed by `use`'s end, whatever happens.
 */
export async function withCliStore<T>(flags: StoreCliFlags & { store: string }, use: (store: PostgresStore) => Promise<T>): Promise<T> {
  const logger = createLogger({ level: flags.logLevel ?? 'warn', destination: process.stderr });
  // Imported here: PostgreSQL's client and the store's modules load only for a command given --store.
  const { openSharedStore } = await import('../store/open-store.js');
  const store = await openSharedStore({
    url: flags.store,
    keyFile: flags.storeKeyFile ? absolute(flags.storeKeyFile) : undefined,
    replicaId: `cli-${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`,
    contendForLeader: false,
    deps: { clock: systemClock, random: (n) => randomBytes(n), logger: logger.child({ component: 'store' }), registry: new Registry(), timer: unrefTimer },
  });
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

/** Who applied a change, for `meshd config get`: the OS user and host. */
export function operatorName(): string {
  const user = process.env.USER ?? process.env.LOGNAME ?? `uid ${process.getuid?.() ?? '?'}`;
  return `${user}@${hostname()}`;
}
