import t from 'tap';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { systemClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { unrefTimer } from '../../src/store/deps.js';
import { StoreKeyError, StoreSchemaError, StoreUnavailableError } from '../../src/store/errors.js';
import { createStoreKeyFile } from '../../src/store/key-file.js';
import { openSharedStore } from '../../src/store/open-store.js';
import { migrate } from '../../src/store/postgres/migrate.js';
import { MIGRATIONS, SCHEMA_VERSION, type Migration } from '../../src/store/postgres/migrations/index.js';
import { tempDir } from '../ca/helpers.js';
import { startPostgres } from './helpers/postgres.js';
import { newKeyRing, openTestStore, systemRandom } from './helpers/store.js';

const pg = await startPostgres(t);
const logger = silentLogger();
const v2: Migration = { version: 2, name: 'second', sql: 'CREATE TABLE meshd_second (id integer PRIMARY KEY)' };

async function schemaRows(url: string): Promise<Array<{ version: number; name: string }>> {
  return pg.sql<{ version: number; name: string }>('SELECT version, name FROM meshd_schema_version ORDER BY version', [], url);
}

async function tables(url: string): Promise<string[]> {
  return (await pg.sql<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename", [], url)).map((r) => r.tablename);
}

t.test('migrations are numbered 1, 2, … in order, with distinct names', async (t) => {
  t.same(MIGRATIONS.map((m) => m.version), MIGRATIONS.map((_, i) => i + 1));
  t.equal(new Set(MIGRATIONS.map((m) => m.name)).size, MIGRATIONS.length);
  t.equal(SCHEMA_VERSION, MIGRATIONS.length);
});

t.test('three replicas opening an empty store together migrate it exactly once', async (t) => {
  const url = await pg.createDatabase();
  const keys = newKeyRing();
  const stores = await Promise.all([1, 2, 3].map((i) => openTestStore(t, url, { keys, replicaId: `r${i}` })));
  t.equal(stores.length, 3, 'all three opened');
  t.same(await schemaRows(url), MIGRATIONS.map((m) => ({ version: m.version, name: m.name })), 'one row per migration');
  t.same(await tables(url), [
    'meshd_ca_journal', 'meshd_ca_root', 'meshd_config_document', 'meshd_config_version', 'meshd_federated_bundle', 'meshd_leader',
    'meshd_proxy_connection', 'meshd_replica', 'meshd_schema_version', 'meshd_store_key', 'meshd_token_key', 'meshd_token_revocation', 'meshd_token_use',
  ]);
  t.same(await migrate({ connectionString: url }, MIGRATIONS, logger), { from: SCHEMA_VERSION, to: SCHEMA_VERSION }, 'a later start finds nothing to do');
});

t.test('concurrent migrations to a new version apply it once', async (t) => {
  const url = await pg.createDatabase();
  await migrate({ connectionString: url }, MIGRATIONS, logger);
  const outcomes = await Promise.all([1, 2, 3, 4].map(() => migrate({ connectionString: url }, [...MIGRATIONS, v2], logger)));
  t.same(outcomes.map((o) => o.to), [2, 2, 2, 2]);
  t.equal(outcomes.filter((o) => o.from === 1).length, 1, 'exactly one of them migrated');
  t.same((await schemaRows(url)).map((r) => r.version), [1, 2]);
});

t.test('a meshd whose code knows an older schema than the store refuses to run and changes nothing', async (t) => {
  const url = await pg.createDatabase();
  await migrate({ connectionString: url }, [...MIGRATIONS, v2], logger);
  const before = { schema: await schemaRows(url), tables: await tables(url) };
  const err = await openTestStore(t, url).catch((e: Error) => e);
  t.type(err, StoreSchemaError);
  t.equal((err as Error).message, "the store's schema is version 2, newer than this meshd knows (version 1): "
    + 'a newer meshd has upgraded it; run that release (or a later one) on every replica. This one refuses to use the store and changed nothing');
  t.same({ schema: await schemaRows(url), tables: await tables(url) }, before, 'schema untouched');
  t.same(await pg.sql('SELECT * FROM meshd_store_key', [], url), [], 'no key check was recorded');
});

t.test('a store whose version 1 is a different migration is refused', async (t) => {
  const url = await pg.createDatabase();
  await migrate({ connectionString: url }, [{ version: 1, name: 'somebody-else', sql: 'CREATE TABLE other (id integer)' }], logger);
  await t.rejects(migrate({ connectionString: url }, MIGRATIONS, logger), {
    name: 'StoreSchemaError',
    message: `the store's schema version 1 is "somebody-else", but this meshd's version 1 is "initial": they are different schemas; refusing to use the store`,
  });
});

t.test('a migration that fails leaves the schema at the previous version', async (t) => {
  const url = await pg.createDatabase();
  await migrate({ connectionString: url }, MIGRATIONS, logger);
  const broken: Migration = { version: 2, name: 'broken', sql: 'CREATE TABLE meshd_half (id integer); SELECT no_such_function()' };
  await t.rejects(migrate({ connectionString: url }, [...MIGRATIONS, broken], logger), {
    name: 'StoreSchemaError', message: /^store schema migration 2 \(broken\) failed: function no_such_function\(\) does not exist \(42883\); the schema stays at version 1$/,
  });
  t.same((await schemaRows(url)).map((r) => r.version), [1]);
  t.notOk((await tables(url)).includes('meshd_half'), 'the half-done migration was rolled back');
});

t.test('a key file other than the store\'s is refused, naming both key ids', async (t) => {
  const url = await pg.createDatabase();
  const first = newKeyRing();
  const store = await openTestStore(t, url, { keys: first });
  await store.close();
  const other = newKeyRing();
  await t.rejects(openTestStore(t, url, { keys: other }), {
    name: 'StoreKeyError',
    message: `the store's keys were encrypted with key id ${first.currentId}; --store-key-file holds ${other.currentId}: start meshd with the key file the store was set up with`,
  });
  t.ok(await openTestStore(t, url, { keys: first }), 'the right key file still opens it');
});

t.test('openSharedStore needs a key file of mode 0600 and opens the store with it', async (t) => {
  const url = await pg.createDatabase();
  const deps = { clock: systemClock, random: systemRandom, logger, registry: new Registry(), timer: unrefTimer };
  const noFile = await openSharedStore({ url, keyFile: undefined, replicaId: 'r1', deps }).catch((e: Error) => e);
  t.type(noFile, StoreKeyError);
  t.equal((noFile as Error).message, "--store needs --store-key-file: the store's private keys are encrypted with a key that never enters the database");
  const file = join(tempDir(t, 'meshd-store-key-'), 'store.key');
  await createStoreKeyFile(file, systemRandom);
  chmodSync(file, 0o644);
  await t.rejects(openSharedStore({ url, keyFile: file, replicaId: 'r1', deps }), { name: 'StoreKeyError', message: /has mode 0644/ });
  t.same(await pg.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", [], url), [], 'refused before touching the database');
  chmodSync(file, 0o600);
  const store = await openSharedStore({ url, keyFile: file, replicaId: 'r1', deps, pollIntervalMs: 100 });
  t.teardown(() => store.close());
  t.equal((await store.config.current()), undefined, 'opened');
});

t.test('a store that cannot be reached at start-up is reported as such', async (t) => {
  const err = await openTestStore(t, 'postgres://meshd@127.0.0.1:9/meshd').catch((e: Error) => e);
  t.type(err, StoreUnavailableError);
  t.match((err as Error).message, /^the store is unreachable: connect ECONNREFUSED 127\.0\.0\.1:9; nothing was changed$/);
  await t.rejects(openTestStore(t, 'mysql://meshd:secret@127.0.0.1:9/meshd'), { message: '--store must be a postgres:// or postgresql:// URL, not mysql://' });
  const notUrl = await openTestStore(t, 'meshd:hunter2@nowhere').catch((e: Error) => e);
  t.notMatch((notUrl as Error).message, /hunter2/, 'a password is never echoed');
});

