import { StoreKeyError } from '../errors.js';
import type { KeyRing } from '../key-ring.js';
import type { Database } from './database.js';

const CHECK_TEXT = 'meshd store key check v1';
const ROW = { table: 'meshd_store_key', id: '1' };

/**
 * Makes sure this process holds the key the store's private keys are sealed with, before
 * anything is read or written. The first replica on an empty store records its key's id
 * and a known text sealed with it; every later start compares.
 */
export async function checkStoreKey(db: Database, keys: KeyRing, at: number): Promise<void> {
  await db.write(async (sql) => {
    await sql.query(
      'INSERT INTO meshd_store_key (id, key_id, sealed_check, created_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING',
      [keys.currentId, keys.seal(CHECK_TEXT, ROW), new Date(at)],
    );
  });
  const row = await db.read(async (sql) => (await sql.query<{ key_id: string; sealed_check: string }>('SELECT key_id, sealed_check FROM meshd_store_key WHERE id = 1')).rows[0]);
  if (!row) throw new StoreKeyError('the store has no record of its key-encryption key');
  if (!keys.ids.includes(row.key_id)) {
    throw new StoreKeyError(`the store's keys were encrypted with key id ${row.key_id}; --store-key-file holds ${keys.ids.join(', ')}: start meshd with the key file the store was set up with`);
  }
  if (keys.open(row.sealed_check, ROW) !== CHECK_TEXT) throw new StoreKeyError(`the store's key check does not match under key id ${row.key_id}`);
}
