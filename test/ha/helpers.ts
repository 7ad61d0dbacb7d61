import { join } from 'node:path';
import type { Logger } from '../../src/common/logger.js';
import { createStoreKeyFile } from '../../src/store/key-file.js';
import type { StoreFlags } from '../../src/server/state-source.js';
import { tempDir } from '../ca/helpers.js';
import { startTestMeshd, type TestMeshd } from '../e2e/helpers/meshd.js';
import type { MeshdOptions } from '../../src/server/meshd.js';
import type { Tap } from '../store/helpers/postgres.js';
import { systemRandom } from '../store/helpers/store.js';

/** A key file (0600) in a temporary directory removed when the test ends. */
export async function storeKeyFile(t: Tap): Promise<string> {
  const path = join(tempDir(t), 'store.key');
  await createStoreKeyFile(path, systemRandom);
  return path;
}

/** Store flags with the short intervals the store's own tests use (a 100 ms poll; proxies written every 200 ms). */
export function fastStore(url: string, keyFile: string, replicaId: string): StoreFlags {
  return { url, keyFile, replicaId, pollIntervalMs: 100, backoff: { baseMs: 50, capMs: 500 }, presenceIntervalMs: 200 };
}

/** An in-process replica on the store, stopped when the test ends. */
export async function startReplica(t: Tap, store: StoreFlags, overrides: Partial<MeshdOptions> & { logger?: Logger } = {}): Promise<TestMeshd> {
  const meshd = await startTestMeshd({ store, ...overrides });
  let closed = false;
  const close = meshd.close;
  meshd.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  t.teardown(() => meshd.close());
  return meshd;
}
