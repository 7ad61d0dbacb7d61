import t from 'tap';
import { X509Certificate } from 'node:crypto';
import pg from 'pg';
import { Registry } from 'prom-client';
import { mintRoot } from '../../src/ca/root-mint.js';
import type { ChangeReason, StoreTopic } from '../../src/store/change-feed.js';
import type { ConfigSet } from '../../src/store/config-repository.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { Database } from '../../src/store/postgres/database.js';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { silentLogger } from '../../src/common/logger.js';
import { StoreView } from '../../src/store/view.js';
import { startPostgres, type Tap } from './helpers/postgres.js';
import { metric, newKeyRing, openTestStore, waitFor, type TestStoreOptions } from './helpers/store.js';

const pgServer = await startPostgres(t);
const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
const doc = (text: string) => [{ name: 'mesh.yaml', text }];

/** What a replica serves config from: the last set it read, refreshed by the feed. */
async function configView(t: Tap, store: PostgresStore) {
  const view = new StoreView<ConfigSet | undefined>({
    feed: store.feed, topic: 'config', load: () => store.config.current(), versionOf: (s) => s?.version ?? 0, logger: silentLogger(),
  });
  await view.start();
  t.teardown(() => view.close());
  const updates: Array<{ version: number; reason: ChangeReason }> = [];
  view.onUpdate((set, reason) => updates.push({ version: set?.version ?? 0, reason }));
  return { view, updates };
}

/** Writes a config version the way a writer that never notifies would: the change's notification is lost. */
async function writeWithoutNotify(url: string, version: number, text: string): Promise<void> {
  await pgServer.sql(`WITH v AS (INSERT INTO meshd_config_version (version, applied_at, applied_by) VALUES ($1, now(), 'sql') RETURNING version)
    INSERT INTO meshd_config_document (version, name, text) SELECT version, 'mesh.yaml', $2 FROM v`, [version, text], url);
}

async function pair(t: Tap, a: TestStoreOptions = {}, b: TestStoreOptions = {}) {
  const url = await pgServer.createDatabase();
  const keys = newKeyRing();
  const writer = await openTestStore(t, url, { keys, replicaId: 'writer', ...a });
  const reader = await openTestStore(t, url, { keys, replicaId: 'reader', ...b });
  return { url, writer, reader };
}

t.test('a change written through one replica reaches another by NOTIFY within a second, for every topic', async (t) => {
  const { writer, reader } = await pair(t);
  const heard: Array<[StoreTopic, ChangeReason]> = [];
  for (const topic of ['ca', 'tokens', 'config', 'bundles'] as const) reader.feed.subscribe(topic, (reason) => heard.push([topic, reason]));
  const { view, updates } = await configView(t, reader);

  await writer.config.apply(doc('v1'), { expectedVersion: 0, appliedBy: 'writer', at: T0 });
  await waitFor('the reader to re-read config', () => updates[0], 1_000);
  t.same(updates, [{ version: 1, reason: 'notify' }], 'announced by NOTIFY (the periodic re-read is a minute away)');
  t.same(view.current?.documents, doc('v1'));

  const minted = await mintRoot({ trustDomain: 'cluster.local', keyType: 'ec-p256', ttlMs: 86_400_000, now: Date.now() });
  await writer.ca.commit({
    expectedVersion: 0, journalText: '{}', at: T0,
    newRoots: [{ id: 'root-1', certPem: minted.certPem, keyPem: minted.key.privateKeyPem, keyType: 'ec-p256', fingerprint256: new X509Certificate(minted.certPem).fingerprint256.replaceAll(':', '').toLowerCase() }],
  });
  await writer.tokens.revoke({ tokenId: 'jti-1', revokedAt: T0, expiresAt: T0 + 1000 });
  await writer.bundles.put({ trustDomain: 'west.example', bundle: '{"keys":[]}', sequence: 1, fetchedAt: T0 });
  await waitFor('a notification per topic', () => (['ca', 'tokens', 'bundles'].every((topic) => heard.some(([h]) => h === topic)) ? true : undefined), 1_000);
  t.same(heard.filter(([, reason]) => reason !== 'notify'), [], 'all by NOTIFY');

  const before = heard.length;
  const refused = await writer.config.apply(doc('v2'), { expectedVersion: 0, appliedBy: 'writer', at: T0 });
  t.equal(refused.outcome, 'conflict');
  await writer.bundles.put({ trustDomain: 'west.example', bundle: '{"keys":[]}', sequence: 0, fetchedAt: T0 });
  await writer.tokens.revoke({ tokenId: 'jti-2', revokedAt: T0, expiresAt: T0 + 1000 }); // a marker that does notify
  await waitFor('the marker', () => (heard.slice(before).some(([topic]) => topic === 'tokens') ? true : undefined), 1_000);
  t.same(heard.slice(before), [['tokens', 'notify']], 'a write that rolled back announced nothing');
});

t.test('a change whose notification is lost is caught by the periodic re-read', async (t) => {
  const { url, reader } = await pair(t, {}, { resyncIntervalMs: 200 });
  const { view, updates } = await configView(t, reader);
  await writeWithoutNotify(url, 1, 'written without NOTIFY');
  await waitFor('the periodic re-read', () => updates[0]);
  t.same(updates, [{ version: 1, reason: 'periodic' }]);
  t.same(view.current?.documents, doc('written without NOTIFY'));
});

t.test('a replica whose session was lost re-reads everything when it reconnects', async (t) => {
  const { url, reader } = await pair(t, {}, { resyncIntervalMs: Infinity });
  const { view, updates } = await configView(t, reader);
  await writeWithoutNotify(url, 1, 'missed while away');
  const ended = await pgServer.sql<{ ok: boolean }>("SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'meshd-session reader'", [], url);
  t.same(ended, [{ ok: true }], "the reader's session was ended");
  await waitFor('the re-read on reconnect', () => updates[0]);
  t.same(updates, [{ version: 1, reason: 'reconnect' }]);
  t.same(view.current?.documents, doc('missed while away'));
});

t.test('PostgreSQL stopped and restarted: replicas serve what they read, refuse writes, and catch up', async (t) => {
  const registries = [new Registry(), new Registry()];
  const { writer, reader } = await pair(t, { registry: registries[0]! }, { registry: registries[1]! });
  const stores = [writer, reader];
  const { view, updates } = await configView(t, reader);
  await writer.config.apply(doc('v1'), { expectedVersion: 0, appliedBy: 'writer', at: T0 });
  await waitFor('v1 at the reader', () => updates[0]);
  await waitFor('a leader', () => stores.find((s) => s.leader.current()));
  t.same(await Promise.all(registries.map((r) => metric(r, 'meshd_store_up'))), [1, 1], 'meshd_store_up is 1');

  await pgServer.stop();
  await waitFor('meshd_store_up 0 on both', async () => ((await Promise.all(registries.map((r) => metric(r, 'meshd_store_up')))).every((v) => v === 0) ? true : undefined));
  t.same(stores.map((s) => s.leader.current()), [undefined, undefined], 'no replica leads without the store');
  t.same(view.current?.documents, doc('v1'), 'the reader still serves v1 from memory');

  const write = await writer.config.apply(doc('v2'), { expectedVersion: 1, appliedBy: 'writer', at: T0 }).catch((e: Error) => e);
  t.type(write, StoreUnavailableError);
  t.match((write as Error).message, /^the store is unreachable: .*ECONNREFUSED.*; nothing was changed$/, (write as Error).message);
  t.equal((write as StoreUnavailableError).outcome, 'unchanged');
  const read = await reader.config.current().catch((e: Error) => e);
  t.match((read as Error).message, /^the store is unreachable: .*; serving what was last read$/);
  t.same(view.current?.documents, doc('v1'), 'a failed re-read changes nothing');

  await pgServer.start();
  await waitFor('meshd_store_up 1 on both', async () => ((await Promise.all(registries.map((r) => metric(r, 'meshd_store_up')))).every((v) => v === 1) ? true : undefined));
  for (const [i, r] of registries.entries()) t.ok((await metric(r, 'meshd_store_reconnect_attempts_total'))! >= 1, `replica ${i + 1} counted its reconnect attempts`);
  await waitFor('one leader again', () => (stores.filter((s) => s.leader.current()).length === 1 ? true : undefined));
  const applied = await writer.config.apply(doc('v2'), { expectedVersion: 1, appliedBy: 'writer', at: T0 });
  t.equal(applied.outcome, 'applied', 'writes work again');
  await waitFor('v2 at the reader', () => (view.current?.version === 2 ? true : undefined), 1_000);
  t.same(view.current?.documents, doc('v2'));
});

t.test('a connection lost while committing is reported as an unknown outcome, not as "nothing was changed"', async (t) => {
  const { url, writer } = await pair(t);
  // A deferred constraint trigger runs at COMMIT: it holds the commit open long enough to end the session mid-commit.
  await pgServer.sql(`CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON meshd_federated_bundle DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()`, [], url);
  const put = writer.bundles.put({ trustDomain: 'west.example', bundle: '{"keys":[]}', sequence: 1, fetchedAt: T0 }).catch((e: Error) => e);
  await waitFor('the commit under way', async () => (await pgServer.sql("SELECT 1 FROM pg_stat_activity WHERE query = 'COMMIT' AND state = 'active'", [], url)).length > 0 ? true : undefined);
  await pgServer.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'COMMIT' AND state = 'active'", [], url);
  const err = await put;
  t.type(err, StoreUnavailableError);
  t.equal((err as StoreUnavailableError).outcome, 'unknown');
  t.match((err as Error).message, /^the store is unreachable: .*; the connection was lost while committing, so the change may or may not have been saved: read the store again before retrying$/);
});

t.test('a connection that dies between two statements of a write fails it as unreachable, and the process lives on', async (t) => {
  const { url, writer } = await pair(t);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  t.teardown(() => pool.end());
  const db = new Database(pool);
  const err = await db.write(async (sql) => {
    const pid = (await sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await pgServer.sql('SELECT pg_terminate_backend($1)', [pid], url);
    // No statement is under way when the server's goodbye arrives: pg emits 'error' on the client.
    await waitFor('the connection to close', () => (sql.connection.stream.destroyed ? true : undefined));
    await sql.query('SELECT 1');
  }).catch((e: Error) => e);
  t.type(err, StoreUnavailableError);
  t.equal((err as StoreUnavailableError).outcome, 'unchanged');
  t.equal((await db.read(async (sql) => (await sql.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one)), 1, 'the pool opens a new connection');
  t.ok(await writer.config.current() === undefined, 'the store is fine');
});
