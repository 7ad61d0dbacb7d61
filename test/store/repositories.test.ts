import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomUUID, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { mintRoot } from '../../src/ca/root-mint.js';
import type { CaCommitResult, NewRoot } from '../../src/store/ca-repository.js';
import { CONFIG_VERSIONS_KEPT, type ConfigDocument } from '../../src/store/config-repository.js';
import { NotLeaderError, StoreInputError, StoreKeyError } from '../../src/store/errors.js';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { postgresBinDir, startPostgres, type Tap } from './helpers/postgres.js';
import { newKeyRing, openTestStore, waitFor } from './helpers/store.js';

const pg = await startPostgres(t);
const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);

async function newRoot(id: string): Promise<NewRoot> {
  const minted = await mintRoot({ trustDomain: 'cluster.local', keyType: 'ec-p256', ttlMs: 365 * 86_400_000, now: Date.now() });
  return {
    id, certPem: minted.certPem, keyPem: minted.key.privateKeyPem, keyType: 'ec-p256',
    fingerprint256: new X509Certificate(minted.certPem).fingerprint256.replaceAll(':', '').toLowerCase(),
  };
}

/** Several replicas (store instances, each with its own pool and session) on one fresh database. */
async function replicas(t: Tap, n: number): Promise<{ url: string; stores: PostgresStore[] }> {
  const url = await pg.createDatabase();
  const keys = newKeyRing();
  const stores: PostgresStore[] = [];
  for (let i = 1; i <= n; i++) stores.push(await openTestStore(t, url, { keys, replicaId: `replica-${i}` }));
  return { url, stores };
}

const journalText = (ids: string[]) => JSON.stringify({ version: 1, roots: ids });

t.test('CA: three replicas racing to create the first root on an empty store create exactly one', async (t) => {
  const { url, stores } = await replicas(t, 3);
  // Each replica does what a CA on an empty store does: read, find nothing, mint, commit.
  const results = await Promise.all(stores.map(async (store, i) => {
    const state = await store.ca.read();
    t.equal(state.journal, undefined, `replica ${i + 1} found an empty store`);
    const root = await newRoot('root-1');
    return { root, result: await store.ca.commit({ expectedVersion: 0, journalText: journalText([`root-1 by ${i}`]), newRoots: [root], at: T0 }) };
  }));
  const winners = results.filter((r) => r.result.committed);
  t.equal(winners.length, 1, 'exactly one commit landed');
  const winner = winners[0]!;
  for (const r of results.filter((r) => !r.result.committed)) {
    const lost = r.result as Extract<CaCommitResult, { committed: false }>;
    t.equal(lost.current?.version, 1, 'a loser is told the journal that won');
    t.equal(lost.current?.text, (winner.result as Extract<CaCommitResult, { committed: true }>).journal.text);
  }
  t.same(await pg.sql('SELECT id FROM meshd_ca_root', [], url), [{ id: 'root-1' }], 'one root row');
  for (const store of stores) {
    const state = await store.ca.read();
    t.equal(state.journal?.version, 1);
    t.same(state.roots.map((r) => [r.id, r.fingerprint256, r.keyPem]), [['root-1', winner.root.fingerprint256, winner.root.keyPem]], 'every replica reads the winner\'s root and key');
  }
});

t.test('CA: a rotation commits the journal and its new root together, once; the loser writes nothing', async (t) => {
  const { url, stores } = await replicas(t, 2);
  const [a, b] = stores as [PostgresStore, PostgresStore];
  t.ok((await a.ca.commit({ expectedVersion: 0, journalText: journalText(['root-1']), newRoots: [await newRoot('root-1')], at: T0 })).committed);
  const [rootA, rootB] = [await newRoot('root-2'), await newRoot('root-2')];
  const [ra, rb] = await Promise.all([
    a.ca.commit({ expectedVersion: 1, journalText: journalText(['root-1', 'root-2 by a']), newRoots: [rootA], at: T0 + 1000 }),
    b.ca.commit({ expectedVersion: 1, journalText: journalText(['root-1', 'root-2 by b']), newRoots: [rootB], at: T0 + 1000 }),
  ]);
  t.equal([ra, rb].filter((r) => r.committed).length, 1, 'one rotation landed');
  const kept = ra.committed ? rootA : rootB;
  const state = await a.ca.read();
  t.equal(state.journal?.version, 2);
  t.same(state.roots.map((r) => [r.id, r.fingerprint256]), [['root-1', state.roots[0]!.fingerprint256], ['root-2', kept.fingerprint256]]);
  t.equal(Number((await pg.sql<{ n: string }>('SELECT count(*) AS n FROM meshd_ca_root', [], url))[0]!.n), 2, "the loser's root was not written");
  const stale = await b.ca.commit({ expectedVersion: 1, journalText: 'stale', newRoots: [], at: T0 + 2000 });
  t.same(stale, { committed: false, current: state.journal }, 'a commit from an old version is refused with the current journal');
});

t.test('CA: roots are never overwritten or deleted, and a record must match its certificate', async (t) => {
  const { url, stores: [store] } = await replicas(t, 1);
  const root1 = await newRoot('root-1');
  await store!.ca.commit({ expectedVersion: 0, journalText: 'j1', newRoots: [root1], at: T0 });
  await t.rejects(store!.ca.commit({ expectedVersion: 1, journalText: 'j2', newRoots: [await newRoot('root-1')], at: T0 }), {
    name: 'StoreInputError', message: /^a root with id root-1 or fingerprint [0-9a-f]{64} is already in the store; roots are never overwritten, and nothing was written$/,
  });
  t.equal((await store!.ca.read()).journal?.version, 1, 'the journal did not move');
  await t.rejects(pg.sql("UPDATE meshd_ca_root SET cert_pem = 'x'", [], url), /meshd_ca_root rows are never updated/);
  await t.rejects(pg.sql('DELETE FROM meshd_ca_root', [], url), /meshd_ca_root rows are never deleted/);
  t.equal((await store!.ca.read()).roots[0]!.certPem, root1.certPem, 'the root is intact');
  const other = await newRoot('root-2');
  await t.rejects(store!.ca.commit({ expectedVersion: 1, journalText: 'j2', newRoots: [{ ...other, fingerprint256: root1.fingerprint256 }], at: T0 }), {
    name: 'StoreInputError', message: `root root-2: fingerprint ${root1.fingerprint256} is not the certificate's (${other.fingerprint256})`,
  });
  await t.rejects(store!.ca.commit({ expectedVersion: 1, journalText: 'j2', newRoots: [other, other], at: T0 }), { message: 'root id root-2 appears twice in one commit' });
  await t.rejects(store!.ca.commit({ expectedVersion: 1, journalText: 'j2', newRoots: [{ ...other, keyPem: 'not a key' }], at: T0 }), { message: 'root root-2: the key is not a PEM private key' });
});

t.test('CA: a sealed key moved to another root\'s row does not open', async (t) => {
  const { url, stores: [store] } = await replicas(t, 1);
  await store!.ca.commit({ expectedVersion: 0, journalText: 'j1', newRoots: [await newRoot('root-1'), await newRoot('root-2')], at: T0 });
  // Swapping sealed keys needs the trigger out of the way, as an attacker with table rights would.
  await pg.sql(`ALTER TABLE meshd_ca_root DISABLE TRIGGER meshd_ca_root_immutable;
    UPDATE meshd_ca_root SET sealed_key = (SELECT sealed_key FROM meshd_ca_root WHERE id = 'root-1') WHERE id = 'root-2'`, [], url);
  const err = await store!.ca.read().catch((e: Error) => e);
  t.type(err, StoreKeyError);
  t.match((err as Error).message, /^the sealed key of meshd_ca_root root-2 does not authenticate under key id [0-9a-f]{16}: it was altered or belongs to another row$/);
});

t.test('CA: a commit fenced by a term that is no longer the leader\'s writes nothing', async (t) => {
  const { url, stores: [store] } = await replicas(t, 1);
  const fence = await waitFor('leadership', () => store!.leader.current());
  await pg.sql('UPDATE meshd_leader SET term = term + 1', [], url); // another replica took over
  const err = await store!.ca.commit({ expectedVersion: 0, journalText: 'j1', newRoots: [await newRoot('root-1')], at: T0, fence }).catch((e: Error) => e);
  t.type(err, NotLeaderError);
  t.equal((err as Error).message, `this replica's leadership (term ${fence.term}) has ended; term ${fence.term + 1} leads now; nothing was changed`);
  t.same(await store!.ca.read(), { journal: undefined, roots: [] });
  t.ok((await store!.ca.commit({ expectedVersion: 0, journalText: 'j1', newRoots: [], at: T0, fence: { term: fence.term + 1 } })).committed, 'the current term writes');
});

t.test('tokens: signing keys are written once per id, sealed, listed oldest first, and removable', async (t) => {
  const { stores: [store] } = await replicas(t, 1);
  const pem = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const k1 = { id: 'token-key-1', algorithm: 'ES256', keyPem: pem(), createdAt: T0 };
  const k2 = { id: 'token-key-2', algorithm: 'ES256', keyPem: pem(), createdAt: T0 + 1000 };
  t.equal(await store!.tokens.addSigningKey(k2), true);
  t.equal(await store!.tokens.addSigningKey(k1), true);
  t.equal(await store!.tokens.addSigningKey({ ...k1, keyPem: pem() }), false, 'a second key under one id is refused');
  t.same(await store!.tokens.signingKeys(), [k1, k2], 'oldest first, the first key under each id kept');
  t.equal(await store!.tokens.removeSigningKey('token-key-1'), true);
  t.equal(await store!.tokens.removeSigningKey('token-key-1'), false);
  t.same((await store!.tokens.signingKeys()).map((k) => k.id), ['token-key-2']);
  await t.rejects(store!.tokens.addSigningKey({ ...k1, algorithm: 'none; drop' }), StoreInputError);
});

t.test('tokens: of 30 concurrent uses of one single-use token across 3 replicas, exactly one is first', async (t) => {
  const { stores } = await replicas(t, 3);
  const tokenId = randomUUID();
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => stores[i % 3]!.tokens.consume({ tokenId, expiresAt: T0 + 3_600_000, at: T0 + i })));
  const firsts = results.filter((r) => r.first);
  t.equal(firsts.length, 1, 'one winner');
  const usedAt = new Set(results.filter((r) => !r.first).map((r) => (r as { firstUsedAt: number }).firstUsedAt));
  t.equal(usedAt.size, 1, 'every other consumer is told the same first use');
  t.same(await stores[0]!.tokens.consume({ tokenId, expiresAt: T0 + 3_600_000, at: T0 + 99 }), { first: false, firstUsedAt: [...usedAt][0] });
  t.same(await stores[1]!.tokens.consume({ tokenId: randomUUID(), expiresAt: T0 + 3_600_000, at: T0 }), { first: true }, 'another token is independent');
  await t.rejects(stores[0]!.tokens.consume({ tokenId: 'has space', expiresAt: T0, at: T0 }), { message: 'a token id is printable ASCII without spaces' });
});

t.test('tokens: revocations keep the first, are listed, and are pruned with use records after the token expires', async (t) => {
  const { stores: [store] } = await replicas(t, 1);
  await store!.tokens.revoke({ tokenId: 'b', revokedAt: T0, expiresAt: T0 + 1000 });
  await store!.tokens.revoke({ tokenId: 'a', revokedAt: T0 + 5, expiresAt: T0 + 5000 });
  await store!.tokens.revoke({ tokenId: 'b', revokedAt: T0 + 9, expiresAt: T0 + 1000 });
  t.same(await store!.tokens.revocations(), [
    { tokenId: 'a', revokedAt: T0 + 5, expiresAt: T0 + 5000 },
    { tokenId: 'b', revokedAt: T0, expiresAt: T0 + 1000 },
  ]);
  await store!.tokens.consume({ tokenId: 'used-early', expiresAt: T0 + 1000, at: T0 });
  await store!.tokens.consume({ tokenId: 'used-late', expiresAt: T0 + 5000, at: T0 });
  t.same(await store!.tokens.prune(T0 + 1000), { uses: 0, revocations: 0 }, 'nothing expires at its exact expiry');
  t.same(await store!.tokens.prune(T0 + 1001), { uses: 1, revocations: 1 });
  t.same((await store!.tokens.revocations()).map((r) => r.tokenId), ['a']);
  t.same(await store!.tokens.consume({ tokenId: 'used-late', expiresAt: T0 + 5000, at: T0 + 2 }), { first: false, firstUsedAt: T0 }, 'an unexpired use record stays');
  const fence = await waitFor('leadership', () => store!.leader.current());
  t.same(await store!.tokens.prune(T0 + 10_000, fence), { uses: 1, revocations: 1 }, 'the leader prunes with its fence');
  await t.rejects(store!.tokens.prune(T0 + 10_000, { term: fence.term - 1 }), NotLeaderError);
});

const docs = (version: string, names = ['mesh.yaml', 'shop.yaml']): ConfigDocument[] => names.map((name) => ({ name, text: `# ${name} at ${version}\nkind: Example\n` }));

t.test('config: a set is applied whole from the version it was read at, and read back sorted', async (t) => {
  const { stores: [store] } = await replicas(t, 1);
  t.equal(await store!.config.current(), undefined);
  const first = await store!.config.apply([...docs('v1')].reverse(), { expectedVersion: 0, appliedBy: 'alice', at: T0 });
  t.same(first, { outcome: 'applied', set: { version: 1, appliedAt: T0, appliedBy: 'alice', documents: docs('v1') } });
  t.same(await store!.config.current(), first.outcome === 'applied' ? first.set : undefined);
  t.same(await store!.config.apply(docs('v1'), { expectedVersion: 1, appliedBy: 'bob', at: T0 + 1 }), { outcome: 'unchanged', set: (first as { set: unknown }).set }, 'the same set writes nothing');
  const second = await store!.config.apply(docs('v2', ['mesh.yaml']), { expectedVersion: 1, appliedBy: 'bob', at: T0 + 2 });
  t.equal(second.outcome, 'applied');
  t.same((await store!.config.current())?.documents, docs('v2', ['mesh.yaml']), 'a document left out of the set is gone');
  t.same(await store!.config.apply(docs('v3'), { expectedVersion: 1, appliedBy: 'carol', at: T0 + 3 }), { outcome: 'conflict', currentVersion: 2 }, 'applying over a version already replaced is refused');
  t.same(await store!.config.apply([], { expectedVersion: 2, appliedBy: 'dave', at: T0 + 4 }), { outcome: 'applied', set: { version: 3, appliedAt: T0 + 4, appliedBy: 'dave', documents: [] } }, 'an empty set is a set');
});

t.test('config: of concurrent applies from one version across replicas exactly one lands', async (t) => {
  const { stores } = await replicas(t, 3);
  await stores[0]!.config.apply(docs('base'), { expectedVersion: 0, appliedBy: 'x', at: T0 });
  const results = await Promise.all(stores.map((s, i) => s.config.apply(docs(`by ${i}`), { expectedVersion: 1, appliedBy: `r${i}`, at: T0 + 1 })));
  t.equal(results.filter((r) => r.outcome === 'applied').length, 1);
  t.same(results.filter((r) => r.outcome !== 'applied'), [{ outcome: 'conflict', currentVersion: 2 }, { outcome: 'conflict', currentVersion: 2 }]);
});

t.test('config: a reader never sees half of a set', async (t) => {
  const { stores: [writer, reader] } = await replicas(t, 2);
  const names = Array.from({ length: 50 }, (_, i) => `doc-${String(i).padStart(2, '0')}.yaml`);
  let done = false;
  let reads = 0;
  const readLoop = (async () => {
    while (!done) {
      const set = await reader!.config.current();
      if (!set) continue;
      reads++;
      const markers = new Set(set.documents.map((d) => /at (v\d+)/.exec(d.text)![1]));
      t.equal(markers.size, 1, `version ${set.version} holds documents of one apply`);
      t.equal(markers.has(`v${set.version}`), true);
      t.equal(set.documents.length, names.length);
    }
  })();
  for (let v = 1; v <= 15; v++) await writer!.config.apply(docs(`v${v}`, names), { expectedVersion: v - 1, appliedBy: 'w', at: T0 + v });
  done = true;
  await readLoop;
  t.ok(reads > 0, `the reader read ${reads} times during the applies`);
});

t.test(`config: only the last ${CONFIG_VERSIONS_KEPT} versions are kept`, async (t) => {
  const { url, stores: [store] } = await replicas(t, 1);
  for (let v = 1; v <= CONFIG_VERSIONS_KEPT + 3; v++) await store!.config.apply(docs(`v${v}`), { expectedVersion: v - 1, appliedBy: 'w', at: T0 + v });
  const kept = await pg.sql<{ version: string }>('SELECT version FROM meshd_config_version ORDER BY version', [], url);
  t.same(kept.map((r) => Number(r.version)), Array.from({ length: CONFIG_VERSIONS_KEPT }, (_, i) => i + 4));
  t.equal(Number((await pg.sql<{ n: string }>('SELECT count(DISTINCT version) AS n FROM meshd_config_document', [], url))[0]!.n), CONFIG_VERSIONS_KEPT, 'their documents went with them');
});

t.test('config: a set the store cannot hold is refused whole, naming every problem', async (t) => {
  const { stores: [store] } = await replicas(t, 1);
  await store!.config.apply(docs('v1'), { expectedVersion: 0, appliedBy: 'w', at: T0 });
  const bad = [{ name: '../etc/passwd', text: 'x' }, { name: 'ok.yaml', text: 'a\0b' }, { name: 'ok.yaml', text: 'y' }, { name: '.hidden.yaml', text: '' }];
  const err = await store!.config.apply(bad, { expectedVersion: 1, appliedBy: 'w', at: T0 }).catch((e: Error) => e);
  t.type(err, StoreInputError);
  t.equal((err as Error).message, 'the config set cannot be stored, nothing was written: '
    + 'document 1: the name "../etc/passwd" is not a plain file name (letters, digits, ".", "_", "-"; not starting with "." or "-"; at most 255 bytes); '
    + 'ok.yaml: contains a NUL character; ok.yaml: the name appears twice; '
    + 'document 4: the name ".hidden.yaml" is not a plain file name (letters, digits, ".", "_", "-"; not starting with "." or "-"; at most 255 bytes)');
  t.equal((await store!.config.current())?.version, 1, 'nothing was written');
});

const bundle = (td: string, sequence: number, fetchedAt = T0) => ({ trustDomain: td, bundle: JSON.stringify({ keys: [], spiffe_sequence: sequence }), sequence, fetchedAt });

t.test('bundles: one per trust domain, never moved back to an older sequence', async (t) => {
  const { stores: [store] } = await replicas(t, 1);
  t.same(await store!.bundles.put(bundle('west.example', 3)), { stored: true });
  t.same(await store!.bundles.put(bundle('east.example', 1)), { stored: true });
  t.same(await store!.bundles.list(), [bundle('east.example', 1), bundle('west.example', 3)]);
  t.same(await store!.bundles.put(bundle('west.example', 2, T0 + 5)), { stored: false, current: bundle('west.example', 3) }, 'an older bundle is refused with what is stored');
  t.same(await store!.bundles.put(bundle('west.example', 3, T0 + 7)), { stored: true }, 'a re-fetch of the same sequence updates the fetch time');
  t.same(await store!.bundles.get('west.example'), bundle('west.example', 3, T0 + 7));
  t.same(await store!.bundles.put(bundle('west.example', 4, T0 + 9)), { stored: true });
  t.equal((await store!.bundles.get('west.example'))?.sequence, 4);
  t.equal(await store!.bundles.get('north.example'), undefined);
  t.equal(await store!.bundles.remove('east.example'), true);
  t.equal(await store!.bundles.remove('east.example'), false);
  t.same((await store!.bundles.list()).map((b) => b.trustDomain), ['west.example']);
});

t.test('bundles: malformed ones are refused and nothing is written', async (t) => {
  const { stores: [store] } = await replicas(t, 1);
  await t.rejects(store!.bundles.put({ ...bundle('west.example', 1), bundle: '{"keys": [' }), { message: 'the bundle cannot be stored, nothing was written: trust domain west.example: the bundle is not JSON' });
  await t.rejects(store!.bundles.put({ ...bundle('west.example', 1), bundle: '[]' }), { message: /the bundle is not a JSON object$/ });
  await t.rejects(store!.bundles.put(bundle('West.Example', 1)), { message: /"West.Example" is not a trust domain name/ });
  await t.rejects(store!.bundles.put(bundle('west.example', -1)), { message: /sequence -1 is not a non-negative integer/ });
  t.same(await store!.bundles.list(), []);
});

t.test('proxy registry: replicas heartbeat, record their proxies in batches, and dead ones expire', async (t) => {
  const { stores: [store] } = await replicas(t, 1);
  const reg = store!.proxies;
  const r1 = { id: 'replica-1', address: '10.0.0.1:15014', startedAt: T0 };
  const r2 = { id: 'replica-2', address: '10.0.0.2:15014', startedAt: T0 };
  t.same(await reg.heartbeat(r1, T0), { recreated: true }, 'a new replica');
  t.same(await reg.heartbeat(r1, T0 + 1000), { recreated: false });
  await reg.heartbeat(r2, T0 + 1000);
  await reg.connected('replica-1', [{ proxyId: 'sidecar~10.1.0.1~a.shop~shop.svc.cluster.local', connectedAt: T0 }, { proxyId: 'b', connectedAt: T0 }, { proxyId: 'b', connectedAt: T0 + 1 }]);
  await reg.connected('replica-2', [{ proxyId: 'c', connectedAt: T0 + 2 }, { proxyId: 'b', connectedAt: T0 + 3 }]);
  let listing = await reg.list(T0 + 1500, 5000);
  t.same(listing.replicas, [{ ...r1, heartbeatAt: T0 + 1000, alive: true }, { ...r2, heartbeatAt: T0 + 1000, alive: true }]);
  t.same(listing.proxies.map((p) => [p.proxyId, p.replicaId, p.connectedAt, p.alive]), [
    ['b', 'replica-1', T0 + 1, true], ['b', 'replica-2', T0 + 3, true], ['c', 'replica-2', T0 + 2, true],
    ['sidecar~10.1.0.1~a.shop~shop.svc.cluster.local', 'replica-1', T0, true],
  ], 'every proxy with the replica that holds it (b moving between two)');
  await reg.disconnected('replica-1', ['b', 'not-there']);
  await reg.heartbeat(r2, T0 + 9000);
  listing = await reg.list(T0 + 9000, 5000);
  t.same(listing.proxies.map((p) => [p.proxyId, p.replicaId, p.alive]), [['b', 'replica-2', true], ['c', 'replica-2', true], ['sidecar~10.1.0.1~a.shop~shop.svc.cluster.local', 'replica-1', false]], 'replica-1 stopped heartbeating: its proxies show as not alive');
  t.equal(await reg.expire(T0 + 9000, 5000), 1, 'replica-1 expires');
  t.same((await reg.list(T0 + 9000, 5000)).proxies.map((p) => p.proxyId), ['b', 'c'], 'with its proxies');
  await t.rejects(reg.connected('replica-1', [{ proxyId: 'd', connectedAt: T0 }]), {
    message: 'replica replica-1 is not registered (its heartbeat expired or never came): heartbeat, then replaceAll its proxies; nothing was written',
  });
  t.same(await reg.heartbeat(r1, T0 + 9500), { recreated: true }, 'a replica that was cut off is told its row was gone');
  await reg.replaceAll('replica-1', [{ proxyId: 'a', connectedAt: T0 + 9500 }, { proxyId: 'd', connectedAt: T0 + 9500 }]);
  await reg.replaceAll('replica-2', [{ proxyId: 'c', connectedAt: T0 + 2 }]);
  t.same((await reg.list(T0 + 9500, 5000)).proxies.map((p) => [p.proxyId, p.replicaId]), [['a', 'replica-1'], ['c', 'replica-2'], ['d', 'replica-1']]);
  await reg.remove('replica-2');
  t.same((await reg.list(T0 + 9500, 5000)).replicas.map((r) => r.id), ['replica-1'], 'a replica shutting down removes itself');
  const fence = await waitFor('leadership', () => store!.leader.current());
  t.equal(await reg.expire(T0 + 60_000, 5000, fence), 1, 'the leader expires with its fence');
  await t.rejects(reg.connected('replica-1', [{ proxyId: '', connectedAt: T0 }]), { message: 'a proxy id is 1 to 1024 characters, not 0; nothing was written' });
});

t.test('proxy registry: 10,000 proxies are recorded in one batch', async (t) => {
  const { stores: [store] } = await replicas(t, 1);
  await store!.proxies.heartbeat({ id: 'r', address: 'a:1', startedAt: T0 }, T0);
  const proxies = Array.from({ length: 10_000 }, (_, i) => ({ proxyId: `proxy-${i}`, connectedAt: T0 + i }));
  await store!.proxies.connected('r', proxies);
  t.equal((await store!.proxies.list(T0, 1000)).proxies.length, 10_000);
});

t.test('a dump of the database holds no private key material', async (t) => {
  const { url, stores: [store] } = await replicas(t, 1);
  const root = await newRoot('root-1');
  await store!.ca.commit({ expectedVersion: 0, journalText: journalText(['root-1']), newRoots: [root], at: T0 });
  const tokenKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const tokenPem = tokenKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await store!.tokens.addSigningKey({ id: 'token-key-1', algorithm: 'ES256', keyPem: tokenPem, createdAt: T0 });
  t.equal((await store!.ca.read()).roots[0]!.keyPem, root.keyPem, 'the key is in the store, sealed');

  const dump = spawnSync(join(postgresBinDir(), 'pg_dump'), ['--no-owner', '--data-only', url], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  t.equal(dump.status, 0, dump.stderr.toString());
  const text = dump.stdout.toString('latin1');
  t.match(text, /COPY public\.meshd_ca_root/, 'the dump holds the roots table');
  t.match(text, /BEGIN CERTIFICATE/, 'and the root certificate (public)');
  t.notMatch(text, /PRIVATE KEY/, 'no PEM private key');
  for (const [name, pem] of [['root', root.keyPem], ['token', tokenPem]] as const) {
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    for (const line of pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) t.notOk(text.includes(line), `no base64 line of the ${name} key`);
    t.notOk(text.includes(der.toString('hex')), `no hex of the ${name} key`);
    t.notOk(dump.stdout.includes(der.subarray(-32)), `no raw bytes of the ${name} key's tail`);
    // The EC private scalar itself, in hex and base64, wherever it could be encoded.
    const scalar = Buffer.from(createPrivateKey(pem).export({ format: 'jwk' }).d!, 'base64url');
    for (const form of [scalar.toString('hex'), scalar.toString('base64'), scalar.toString('base64url')]) t.notOk(text.includes(form), `no ${name} private scalar`);
  }
  const everyRow = await pg.sql<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM (
    SELECT * FROM meshd_ca_root) t UNION ALL SELECT row_to_json(k)::text FROM meshd_token_key k UNION ALL SELECT row_to_json(s)::text FROM meshd_store_key s`, [], url);
  t.equal(everyRow.length, 3);
  for (const r of everyRow) t.notMatch(r.row, /PRIVATE KEY/);
});
