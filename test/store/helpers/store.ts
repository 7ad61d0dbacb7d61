import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { systemClock, type Clock } from '../../../src/common/clock.js';
import { silentLogger, type Logger } from '../../../src/common/logger.js';
import { unrefTimer } from '../../../src/store/deps.js';
import { KeyRing } from '../../../src/store/key-ring.js';
import { PostgresStore, type PostgresStoreOptions } from '../../../src/store/postgres/postgres-store.js';
import type { Tap } from './postgres.js';

export const systemRandom = (size: number): Buffer => randomBytes(size);

export function newKeyRing(): KeyRing {
  return new KeyRing([randomBytes(32)], systemRandom);
}

export interface TestStoreOptions extends Partial<Omit<PostgresStoreOptions, 'deps' | 'url'>> {
  clock?: Clock;
  logger?: Logger;
  registry?: Registry;
}

/** A store on `url` with short intervals (a 100 ms poll), closed when the test ends. */
export async function openTestStore(t: Tap, url: string, options: TestStoreOptions = {}): Promise<PostgresStore> {
  const { clock, logger, registry, ...rest } = options;
  const store = await PostgresStore.open({
    url,
    keys: rest.keys ?? newKeyRing(),
    replicaId: rest.replicaId ?? `replica-${randomBytes(3).toString('hex')}`,
    deps: { clock: clock ?? systemClock, random: systemRandom, logger: logger ?? silentLogger(), registry: registry ?? new Registry(), timer: unrefTimer },
    pollIntervalMs: 100,
    resyncIntervalMs: 60_000,
    backoff: { baseMs: 50, capMs: 500 },
    ...rest,
  });
  t.teardown(() => store.close());
  return store;
}

/** Polls `check` every 20 ms until it returns something other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The value of a gauge or counter in `registry`. */
export async function metric(registry: Registry, name: string): Promise<number | undefined> {
  const m = registry.getSingleMetric(name);
  if (!m) return undefined;
  return (await m.get()).values[0]?.value;
}
