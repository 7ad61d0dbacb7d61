import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { mintRoot } from '../../src/ca/root-mint.js';
import { initialJournal } from '../../src/ca/rotation.js';
import { serializeJournal } from '../../src/ca/journal.js';
import { signingCertificate } from '../../src/ca/signer.js';
import { startMeshd } from '../../src/server/meshd.js';
import { silentLogger } from '../../src/common/logger.js';
import { systemClock } from '../../src/common/clock.js';
import { tempDir } from '../ca/helpers.js';
import { captureLogs } from '../common/log-capture.js';
import { startPostgres } from '../store/helpers/postgres.js';
import { openTestStore, waitFor } from '../store/helpers/store.js';
import { readStoreKeyFile } from '../../src/store/key-file.js';
import { fastStore, startReplica, storeKeyFile } from './helpers.js';
import { bearer } from '../e2e/helpers/meshd.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import type { SotwResponse } from '../xds/helpers/xds-client.js';
import { systemRandom } from '../store/helpers/store.js';

/**
 * Several `meshd serve` replicas (in-process, loopback) on one real PostgreSQL: one CA, one
 * token key, root changes followed through the change feed, automatic rotation by the leader.
 */
const pg = await startPostgres(t);

const leafOf = (chainPem: string): X509Certificate => new X509Certificate(chainPem);

t.test('three replicas started together on an empty store create one root; all sign with it and accept each other\'s tokens', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const replicas = await Promise.all([1, 2, 3].map((i) => startReplica(t, fastStore(url, keyFile, `replica-${i}`))));

  const roots = await pg.sql<{ id: string; fingerprint256: string }>('SELECT id, fingerprint256 FROM meshd_ca_root', [], url);
  t.equal(roots.length, 1, 'exactly one root in the store');
  const journal = await pg.sql<{ version: string }>('SELECT version FROM meshd_ca_journal', [], url);
  t.same(journal.map((j) => Number(j.version)), [1], 'the journal was committed once');
  const bundles = replicas.map((r) => r.ca.trustBundle().rootsPem);
  t.equal(bundles[0]!.length, 1);
  t.same(bundles[1], bundles[0], 'replica 2 serves the same bundle as replica 1');
  t.same(bundles[2], bundles[0], 'replica 3 serves the same bundle as replica 1');
  const root = new X509Certificate(bundles[0]![0]!);
  t.equal(root.fingerprint256.replaceAll(':', '').toLowerCase(), roots[0]!.fingerprint256, 'the bundle holds the stored root');

  for (const [i, r] of replicas.entries()) {
    const issued = await r.ca.issue({ spiffeId: `spiffe://cluster.local/ns/shop/sa/web-${i}` });
    const leaf = leafOf(issued.chainPem);
    t.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), `replica ${i + 1} signs with the stored root`);
  }

  const keys = await pg.sql('SELECT id FROM meshd_token_key', [], url);
  t.equal(keys.length, 1, 'one token signing key in the store');
  const token = await replicas[0]!.token('shop', 'web');
  for (const r of replicas.slice(1)) t.match(await r.tokens.verify(token), { namespace: 'shop', serviceAccount: 'web' }, 'a token issued through replica 1 is accepted');
  const foreign = await replicas[2]!.token('shop', 'db');
  t.match(await replicas[0]!.tokens.verify(foreign), { namespace: 'shop', serviceAccount: 'db' }, 'and the other way round');

  const sealed = await pg.sql<{ sealed_key: string }>('SELECT sealed_key FROM meshd_ca_root', [], url);
  t.notMatch(sealed[0]!.sealed_key, /PRIVATE KEY/, 'the root key is sealed in the database');
});

t.test('a root prepared through one replica reaches the others through the change feed', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const replicas = await Promise.all([1, 2].map((i) => startReplica(t, fastStore(url, keyFile, `replica-${i}`))));
  const changed = new Promise((resolve) => replicas[1]!.ca.onBundleChange(resolve));
  const prepared = await replicas[0]!.ca.prepareNextRoot({ overlapMs: 60_000 });
  t.equal(prepared.id, 'root-2');
  await changed;
  t.same(replicas[1]!.ca.trustBundle().rootsPem, replicas[0]!.ca.trustBundle().rootsPem, 'replica 2 took the new bundle without a restart');
  t.equal(replicas[1]!.ca.trustBundle().rootsPem.length, 2);
  t.same(replicas[1]!.ca.status().roots.map((r) => [r.id, r.state]), [['root-1', 'active'], ['root-2', 'prepared']]);
  t.equal((await pg.sql('SELECT id FROM meshd_ca_root', [], url)).length, 2);

  await t.rejects(replicas[1]!.ca.prepareNextRoot({ overlapMs: 60_000 }), /root-2 is already prepared/, 'a second rotation during the overlap is refused on any replica');
  t.equal((await pg.sql('SELECT id FROM meshd_ca_root', [], url)).length, 2, 'and writes nothing');
});

t.test('a root prepared through one replica is pushed by all three to their SDS streams; the SVIDs they hand out still chain to the active root', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const replicas = await Promise.all([1, 2, 3].map((i) => startReplica(t, fastStore(url, keyFile, `replica-${i}`))));
  const pemOf = (field: { inline_bytes?: unknown }): string => Buffer.from(field.inline_bytes as Buffer).toString('utf8');
  const secret = (r: SotwResponse, name: string): Record<string, any> => r.resources.find((x) => x.name === name)!.decoded as Record<string, any>;
  const rootsIn = (r: SotwResponse): number => pemOf(secret(r, 'ROOTCA').validation_context.trusted_ca).match(/BEGIN CERTIFICATE/g)!.length;
  const streams = await Promise.all(replicas.map(async (r, i) => {
    const stream = r.tlsClient().sotw('sds', { node: { id: `rotation-${i}` }, metadata: bearer(await r.token('shop', `web-${i}`)) });
    stream.subscribe(TypeUrl.Secret, ['default', 'ROOTCA']);
    const first = await stream.next(15_000);
    stream.ack(first);
    t.equal(rootsIn(first), 1, `replica ${i + 1}: one root before`);
    return { stream, first };
  }));
  const firsts = streams.map((s) => s.first);

  await replicas[0]!.ca.prepareNextRoot({ overlapMs: 60_000 });
  const [root1] = replicas[0]!.ca.trustBundle().rootsPem;
  for (const [i, { stream }] of streams.entries()) {
    const pushed = await stream.next(15_000);
    stream.ack(pushed);
    t.equal(rootsIn(pushed), 2, `replica ${i + 1} pushed the bundle with root-2 to its stream`);
    // A new bundle changes ROOTCA only: the SVID stays the one signed by root-1, unless re-sent, and then by root-1 too.
    const held = pushed.resources.some((x) => x.name === 'default') ? pushed : firsts[i]!;
    const leaf = new X509Certificate(pemOf(secret(held, 'default').tls_certificate.certificate_chain));
    t.ok(leaf.checkIssued(new X509Certificate(root1!)) && leaf.verify(new X509Certificate(root1!).publicKey),
      `replica ${i + 1}: the SVID its proxy holds is signed by root-1, which every peer trusts`);
  }
});

t.test('automatic rotation is done by the leader only; followers take the new root from the store', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  // A first root 25 days into a 30-day life: in the last fifth, so rotation is due.
  const seeder = await openTestStore(t, url, { keys: await readStoreKeyFile(keyFile, systemRandom), replicaId: 'seeder' });
  const past = Date.now() - 25 * 86_400_000;
  const minted = await mintRoot({ trustDomain: 'cluster.local', keyType: 'ec-p256', ttlMs: 30 * 86_400_000, now: past });
  const cert = signingCertificate(minted.certDer);
  const journal = initialJournal('cluster.local', { id: 'root-1', keyType: 'ec-p256', fingerprint256: cert.fingerprint256, notBefore: cert.notBefore, notAfter: cert.notAfter }, past);
  const seeded = await seeder.ca.commit({
    expectedVersion: 0, journalText: serializeJournal(journal), at: past,
    newRoots: [{ id: 'root-1', certPem: minted.certPem, keyPem: minted.key.privateKeyPem, keyType: 'ec-p256', fingerprint256: cert.fingerprint256 }],
  });
  t.ok(seeded.committed);
  await seeder.close();

  const logs = [captureLogs('info'), captureLogs('info'), captureLogs('info')];
  const opts = { rootTtlMs: 30 * 86_400_000, maxWorkloadCertTtlMs: 2 * 86_400_000 };
  const replicas = await Promise.all([0, 1, 2].map((i) => startReplica(t, fastStore(url, keyFile, `replica-${i + 1}`), { ...opts, logger: logs[i]!.logger })));
  const leader = await waitFor('a leader', () => {
    const leading = replicas.filter((r) => r.store?.leader.current() !== undefined);
    return leading.length === 1 ? leading[0] : undefined;
  });
  const followers = replicas.filter((r) => r !== leader);

  await Promise.all(followers.map((r) => r.ca.tick()));
  t.equal((await pg.sql('SELECT id FROM meshd_ca_root', [], url)).length, 1, 'followers do not rotate although rotation is due');
  await Promise.all(replicas.map((r) => r.ca.tick()));
  const rows = await pg.sql<{ id: string }>('SELECT id FROM meshd_ca_root ORDER BY id', [], url);
  t.same(rows.map((r) => r.id), ['root-1', 'root-2'], 'the leader prepared one new root');
  const preparing = logs.map((l) => l.lines.filter((line) => line.msg === 'active root is in the last part of its life; preparing the next root').length);
  t.same(preparing, replicas.map((r) => (r === leader ? 1 : 0)), 'only the leader set out to rotate');
  for (const f of followers) await waitFor('the follower to trust root-2', () => (f.ca.trustBundle().rootsPem.length === 2 ? true : undefined));
  t.pass('every follower trusts root-2');
});

t.test('a replica refuses to start against a store without a safe key file, or with --config-dir too', async (t) => {
  const url = await pg.createDatabase();
  const dataDir = tempDir(t);
  const base = { dataDir, trustDomain: 'cluster.local', secureGrpcAddr: '127.0.0.1:0', grpcAddr: '127.0.0.1:0', monitoringAddr: '127.0.0.1:0', logger: silentLogger(), clock: systemClock };
  await t.rejects(startMeshd({ ...base, store: { url, keyFile: undefined } }), /--store needs --store-key-file/);
  const keyFile = await storeKeyFile(t);
  await chmod(keyFile, 0o644);
  await t.rejects(startMeshd({ ...base, store: { url, keyFile } }), /has mode 0644, so group or others can use it; make it readable by its owner only \(chmod 600\)/);
  await chmod(keyFile, 0o600);
  await t.rejects(startMeshd({ ...base, configDir: join(dataDir, 'config'), store: { url, keyFile } }), /--config-dir and --store are two sources of mesh config; give one/);
  t.equal((await pg.sql("SELECT to_regclass('meshd_ca_root') AS t", [], url))[0]!.t, null, 'nothing was created in the database');
});

t.test('a replica whose start fails after opening the store (the trust domain disagrees) leaves no session behind', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const writer = await openTestStore(t, url, { keys: await readStoreKeyFile(keyFile, systemRandom), replicaId: 'writer' });
  await writer.config.apply([{ name: 'mesh.yaml', text: 'trustDomain: other.example\n' }], { expectedVersion: 0, appliedBy: 'test', at: Date.now() });
  await writer.close();
  await t.rejects(
    startMeshd({
      dataDir: tempDir(t), trustDomain: 'cluster.local', trustDomainFromFlag: true, secureGrpcAddr: '127.0.0.1:0', grpcAddr: '127.0.0.1:0', monitoringAddr: '127.0.0.1:0',
      logger: silentLogger(), clock: systemClock, store: fastStore(url, keyFile, 'refused-replica'),
    }),
    /--trust-domain cluster\.local disagrees with the mesh config's trustDomain other\.example/,
  );
  const sessions = await waitFor('the refused replica\'s connections to close', async () => {
    const rows = await pg.sql("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE '%refused-replica'");
    return rows[0]!.n === 0 ? rows[0]!.n : undefined;
  });
  t.equal(sessions, 0, 'no connection of the refused replica is left open');
});
