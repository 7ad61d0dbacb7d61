import type { StoreDeps } from './deps.js';
import { StoreKeyError } from './errors.js';
import { readStoreKeyFile } from './key-file.js';
import { PostgresStore, type PostgresStoreOptions } from './postgres/postgres-store.js';

export interface OpenStoreOptions extends Omit<PostgresStoreOptions, 'keys'> {
  /** --store-key-file; required. */
  keyFile: string | undefined;
  deps: StoreDeps;
}

/**
 * Opens the shared store as `meshd … --store URL --store-key-file FILE` does. Without a key
 * file, or with one that is unsafe or not the store's, nothing is opened.
 */
export async function openSharedStore(options: OpenStoreOptions): Promise<PostgresStore> {
  if (!options.keyFile) {
    throw new StoreKeyError("--store needs --store-key-file: the store's private keys are encrypted with a key that never enters the database");
  }
  const keys = await readStoreKeyFile(options.keyFile, options.deps.random);
  const { keyFile: _unused, ...rest } = options;
  return PostgresStore.open({ ...rest, keys });
}
