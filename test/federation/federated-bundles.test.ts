/**
 * The foreign bundles meshd trusts, fetched from real bundle endpoints on loopback: meshd's own
 * endpoint code serving west.example over https_web (a test Web PKI made with openssl) and
 * east.example over https_spiffe (an X509-SVID of east's own CA). Time is the injected clock's.
 */
import t, { type Test as Tap } from 'tap';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ManualClock } from '../../src/common/clock.js';
import type { ManagedCertificateAuthority } from '../../src/ca/index.js';
import { encodeBundleDocument } from '../../src/federation/bundle-document.js';
import { startBundleEndpoint, type BundleEndpointHandle } from '../../src/federation/bundle-endpoint.js';
import { FILE_POLL_MS } from '../../src/federation/bundle-refresher.js';
import { DataDirBundleStore } from '../../src/federation/bundle-store.js';
import { FederatedBundles, type TrustedForeignBundle } from '../../src/federation/federated-bundles.js';
import type { FederationRelationship } from '../../src/federation/relationship.js';
import {
  captureLogger, rawHttpsEndpoint, sample, SwitchableIdentity, tempDir, trustDomainCa, until, webPki, type WebPki,
} from './helpers.js';

const EAST_ID = 'spiffe://east.example/ns/istio-system/sa/meshd';

interface Rig {
  dir: string;
  pki: WebPki;
  west: ManagedCertificateAuthority;
  east: ManagedCertificateAuthority;
  westEndpoint: BundleEndpointHandle;
  eastEndpoint: BundleEndpointHandle;
  eastIdentity: SwitchableIdentity;
  westRel: FederationRelationship;
  eastRel: FederationRelationship;
}

async function rig(t: Tap): Promise<Rig> {
  const dir = tempDir(t, 'meshd-fed-');
  const pki = webPki(dir, 'west');
  const west = await trustDomainCa(t, 'west.example');
  const east = await trustDomainCa(t, 'east.example');
  const westEndpoint = await startBundleEndpoint({ host: '127.0.0.1', port: 0, profile: { type: 'https_web', certFile: pki.certFile, keyFile: pki.keyFile }, bundle: () => west.bundleJwks(), logger: captureLogger().logger });
  t.teardown(() => westEndpoint.close());
  const eastIdentity = new SwitchableIdentity(await east.issue({ spiffeId: EAST_ID }));
  const eastEndpoint = await startBundleEndpoint({ host: '127.0.0.1', port: 0, profile: { type: 'https_spiffe', identity: eastIdentity }, bundle: () => east.bundleJwks(), logger: captureLogger().logger });
  t.teardown(() => eastEndpoint.close());
  return {
    dir, pki, west, east, westEndpoint, eastEndpoint, eastIdentity,
    westRel: { trustDomain: 'west.example', endpoint: { url: `https://127.0.0.1:${westEndpoint.port}/`, profile: { type: 'https_web' } } },
    eastRel: {
      trustDomain: 'east.example',
      endpoint: { url: `https://127.0.0.1:${eastEndpoint.port}/`, profile: { type: 'https_spiffe', endpointSpiffeId: EAST_ID } },
      bundle: { kind: 'inline', document: encodeBundleDocument(east.bundleJwks()) },
    },
  };
}

function federation(t: Tap, r: { dir: string; pki: WebPki }, opts: { dataDir?: string; own?: string[]; clock?: ManualClock; fetchTimeoutMs?: number } = {}) {
  const clock = opts.clock ?? new ManualClock();
  const log = captureLogger();
  const registry = new Registry();
  const bundles = new FederatedBundles({
    ownTrustDomains: () => opts.own ?? ['cluster.local'], store: new DataDirBundleStore(opts.dataDir ?? r.dir), logger: log.logger, registry,
    clock, random: () => 0.5, extraWebCaPem: r.pki.caPem, fetchTimeoutMs: opts.fetchTimeoutMs,
  });
  t.teardown(() => bundles.stop());
  const announced: Array<ReadonlyMap<string, TrustedForeignBundle>> = [];
  bundles.onChange((m) => announced.push(m));
  return { bundles, clock, log, registry, announced };
}

t.test('both profiles: fetched, trusted per trust domain, stored, counted, announced', async (t) => {
  const r = await rig(t);
  const f = federation(t, r);
  await f.bundles.start([r.westRel, r.eastRel]);
  t.same([...f.bundles.current().keys()], ['east.example'], 'before any fetch: east\'s configured bundle, nothing for west');
  t.equal(f.bundles.current().get('east.example')?.source, 'configured');

  t.same(await f.bundles.refresh('west.example'), { ok: true, changed: true });
  t.same(await f.bundles.refresh('east.example'), { ok: true, changed: false }, 'authenticated with the configured bundle, which it confirms');
  const now = f.clock.now();
  const west = f.bundles.current().get('west.example')!;
  t.same(west, { trustDomain: 'west.example', rootsPem: r.west.trustBundle().rootsPem, sequence: 1n, fetchedAt: now, source: 'endpoint', from: r.westRel.endpoint!.url });
  const east = f.bundles.current().get('east.example')!;
  t.same(east.rootsPem, r.east.trustBundle().rootsPem);
  t.equal(east.source, 'endpoint');
  t.notSame(east.rootsPem, west.rootsPem, 'each trust domain its own roots, never merged');

  t.same(f.announced.map((m) => [...m.keys()]), [['east.example'], ['east.example', 'west.example']], 'announced when the set changed; east\'s fetch only confirmed what was configured');

  const stored = JSON.parse(readFileSync(join(r.dir, 'federation', 'west.example.json'), 'utf8')) as Record<string, unknown>;
  t.same(stored, { format: 1, trustDomain: 'west.example', fetchedAt: new Date(now).toISOString(), endpoint: r.westRel.endpoint!.url, bundle: encodeBundleDocument(r.west.bundleJwks()) });
  t.ok(existsSync(join(r.dir, 'federation', 'east.example.json')));

  for (const [td, seq] of [['west.example', 1], ['east.example', 1]] as const) {
    const labels = { trust_domain: td };
    t.equal(await sample(f.registry, 'meshd_federation_bundle_sequence', labels), seq, `${td} sequence`);
    t.equal(await sample(f.registry, 'meshd_federation_bundle_authorities', labels), 1);
    t.equal(await sample(f.registry, 'meshd_federation_bundle_last_refresh_timestamp_seconds', labels), now / 1000);
    t.equal(await sample(f.registry, 'meshd_federation_refresh_interval_seconds', labels), 300);
  }
  t.equal(await sample(f.registry, 'meshd_federation_bundle_updates_total', { trust_domain: 'west.example' }), 1);
  t.ok(f.log.lines().some((l) => l.msg === 'trusting a new bundle for west.example' && l.sequence === '1'));
});

t.test('https_spiffe: the configured bundle authenticates the first fetch, the fetched one the next, so east can rotate its root', async (t) => {
  const r = await rig(t);
  const f = federation(t, r);
  await f.bundles.start([r.eastRel]);
  t.same(await f.bundles.refresh('east.example'), { ok: true, changed: false });

  // East adds a new root to its bundle; meshd fetches it before east's endpoint uses it.
  // (No overlap here: the certificates must be valid in real time for the TLS handshake.)
  const prepared = await r.east.prepareNextRoot({ overlapMs: 0 });
  t.same(await f.bundles.refresh('east.example'), { ok: true, changed: true }, 'the new root reaches meshd');
  t.equal(f.bundles.current().get('east.example')?.rootsPem.length, 2);
  t.equal(f.bundles.current().get('east.example')?.sequence, 2n);

  const renewed = await r.east.issue({ spiffeId: EAST_ID });
  t.equal(renewed.issuerFingerprint, prepared.fingerprint256, 'east\'s endpoint now serves an SVID of the new root');
  r.eastIdentity.set(renewed);
  t.same(await f.bundles.refresh('east.example'), { ok: true, changed: false }, 'authenticated with the fetched bundle');

  // The configured bundle alone would not do (control): it lacks the new root.
  const fresh = federation(t, r, { dataDir: tempDir(t) });
  await fresh.bundles.start([r.eastRel]);
  const refused = await fresh.bundles.refresh('east.example');
  t.same(refused && !refused.ok && refused.reason, 'tls');
});

t.test('a restart while the endpoint is down trusts the stored bundle and keeps it', async (t) => {
  const r = await rig(t);
  const first = federation(t, r);
  await first.bundles.start([r.westRel]);
  t.ok((await first.bundles.refresh('west.example'))?.ok);
  const fetchedAt = first.clock.now();
  await first.bundles.stop();
  await r.westEndpoint.close();

  const clock = new ManualClock(fetchedAt + 86_400_000);
  const second = federation(t, r, { clock });
  await second.bundles.start([r.westRel]);
  const held = second.bundles.current().get('west.example');
  t.same(held, { trustDomain: 'west.example', rootsPem: r.west.trustBundle().rootsPem, sequence: 1n, fetchedAt, source: 'stored', from: r.westRel.endpoint!.url });
  t.equal(await sample(second.registry, 'meshd_federation_bundle_last_refresh_timestamp_seconds', { trust_domain: 'west.example' }), fetchedAt / 1000, 'its age shows');
  const failed = await second.bundles.refresh('west.example');
  t.same(failed && !failed.ok && failed.reason, 'unreachable');
  t.same(second.bundles.current().get('west.example'), held, 'still trusted');
});

t.test('a configured bundle that changed since the stored one was fetched replaces it (re-bootstrapping)', async (t) => {
  const r = await rig(t);
  const first = federation(t, r);
  await first.bundles.start([r.eastRel]);
  t.ok((await first.bundles.refresh('east.example'))?.ok);
  await first.bundles.stop();

  // Same config: the stored bundle is used.
  const same = federation(t, r);
  await same.bundles.start([r.eastRel]);
  t.equal(same.bundles.current().get('east.example')?.source, 'stored');
  await same.bundles.stop();

  // The operator pastes east's newer bundle into the config: it wins over the stored one.
  await r.east.prepareNextRoot({ overlapMs: 3_600_000 });
  const rebootstrapped: FederationRelationship = { ...r.eastRel, bundle: { kind: 'inline', document: encodeBundleDocument(r.east.bundleJwks()) } };
  const next = federation(t, r);
  await next.bundles.start([rebootstrapped]);
  t.equal(next.bundles.current().get('east.example')?.source, 'configured');
  t.equal(next.bundles.current().get('east.example')?.sequence, 2n);
});

t.test('a trust domain removed from the config is no longer trusted and its stored bundle is deleted', async (t) => {
  const r = await rig(t);
  const f = federation(t, r);
  await f.bundles.start([r.westRel, r.eastRel]);
  await f.bundles.refresh('west.example');
  await f.bundles.refresh('east.example');
  const westFile = join(r.dir, 'federation', 'west.example.json');
  t.ok(existsSync(westFile));

  await f.bundles.apply([r.eastRel]);
  t.same([...f.bundles.current().keys()], ['east.example']);
  t.notOk(existsSync(westFile), 'the stored bundle is deleted (SPIFFE Federation: stop trusting, delete the bundle)');
  t.same([...f.announced.at(-1)!.keys()], ['east.example'], 'the removal is announced');
  t.equal(await sample(f.registry, 'meshd_federation_bundle_sequence', { trust_domain: 'west.example' }), undefined, 'its series are gone');
  t.equal(await f.bundles.refresh('west.example'), undefined);
  await f.bundles.stop();

  // Removed while meshd was down: deleted at the next start.
  const g = federation(t, r);
  await g.bundles.start([]);
  t.notOk(existsSync(join(r.dir, 'federation', 'east.example.json')));
  t.same([...g.bundles.current().keys()], []);
});

t.test('meshd\'s own trust domain or an alias is never federated, even if asked at run time', async (t) => {
  const r = await rig(t);
  const f = federation(t, r, { own: ['east.example', 'old-east.example'] });
  const alias: FederationRelationship = { ...r.westRel, trustDomain: 'old-east.example' };
  await f.bundles.start([r.eastRel, alias, r.westRel]);
  t.same([...f.bundles.current().keys()], [], 'nothing held for them (west has not been fetched yet)');
  t.equal(await f.bundles.refresh('east.example'), undefined, 'no refresher at all');
  t.equal(await f.bundles.refresh('old-east.example'), undefined);
  t.same(f.log.lines().filter((l) => l.level === 50).map((l) => l.msg), [
    "refusing to federate with east.example: it is meshd's own trust domain or an alias",
    "refusing to federate with old-east.example: it is meshd's own trust domain or an alias",
  ]);
  t.ok((await f.bundles.refresh('west.example'))?.ok, 'the other trust domain is unaffected');
});

t.test('a static bundle file: trusted, re-read when it changes, a bad edit keeps the last good one; an inline bundle is never refreshed', async (t) => {
  const r = await rig(t);
  const file = join(r.dir, 'west.json');
  writeFileSync(file, encodeBundleDocument(r.west.bundleJwks()));
  const f = federation(t, r);
  const inline: FederationRelationship = { trustDomain: 'east.example', bundle: { kind: 'inline', document: encodeBundleDocument(r.east.bundleJwks()) } };
  await f.bundles.start([{ trustDomain: 'west.example', bundle: { kind: 'file', path: file } }, inline]);
  t.same([...f.bundles.current().entries()].map(([td, b]) => [td, b.source, b.from, b.sequence]), [
    ['east.example', 'configured', 'ClusterFederatedTrustDomain spec.trustDomainBundle', 1n],
    ['west.example', 'file', file, 1n],
  ]);
  t.same(f.clock.timerDelays(), [0], 'only the file is re-read');
  t.equal(await sample(f.registry, 'meshd_federation_refresh_interval_seconds', { trust_domain: 'east.example' }), undefined, 'no interval for an inline bundle: the staleness alert does not apply');
  t.equal(await sample(f.registry, 'meshd_federation_refresh_interval_seconds', { trust_domain: 'west.example' }), FILE_POLL_MS / 1000);

  f.clock.advance(0);
  await until(() => f.clock.timerDelays().length === 1 && f.clock.timerDelays()[0]! > 0, 'the first re-read');
  await r.west.prepareNextRoot({ overlapMs: 3_600_000 });
  writeFileSync(file, encodeBundleDocument(r.west.bundleJwks()));
  f.clock.advance(FILE_POLL_MS);
  await until(() => f.bundles.current().get('west.example')?.sequence === 2n, 'the edited file to be read');

  writeFileSync(file, '{"keys": [');
  f.clock.advance(FILE_POLL_MS);
  await until(async () => (await sample(f.registry, 'meshd_federation_refresh_failures_total', { trust_domain: 'west.example', reason: 'malformed-json' })) === 1, 'the bad edit to be counted');
  t.equal(f.bundles.current().get('west.example')?.sequence, 2n, 'the last good file stays in force');

  unlinkSync(file);
  f.clock.advance(60_000);
  await until(async () => (await sample(f.registry, 'meshd_federation_refresh_failures_total', { trust_domain: 'west.example', reason: 'file-unreadable' })) === 1, 'the missing file to be counted');
  t.equal(f.bundles.current().get('west.example')?.rootsPem.length, 2);
});

t.test('the schedule: again after the refresh hint, backing off on failures, back to the hint after a success', async (t) => {
  const r = await rig(t);
  const doc = (hint: number): string => encodeBundleDocument({ ...r.west.bundleJwks(), spiffe_refresh_hint: hint });
  const state = { status: 200, body: doc(120) };
  const endpoint = await rawHttpsEndpoint(r.pki, (_req, res) => {
    res.writeHead(state.status, { 'content-type': 'application/json' });
    res.end(state.body);
  });
  t.teardown(() => endpoint.close());
  // While an attempt runs, its fetch deadline is the one pending timer; once it is done, the next refresh is.
  const FETCH_DEADLINE = 7_777;
  const f = federation(t, r, { fetchTimeoutMs: FETCH_DEADLINE });
  await f.bundles.start([{ trustDomain: 'west.example', endpoint: { url: endpoint.url, profile: { type: 'https_web' } } }]);
  const next = async (expected: number, what: string): Promise<void> => {
    const seen = endpoint.requests;
    f.clock.advance(f.clock.timerDelays()[0]!);
    await until(() => endpoint.requests > seen && f.clock.timerDelays().length === 1 && f.clock.timerDelays()[0] !== FETCH_DEADLINE, `${what}: the attempt to finish`);
    t.same(f.clock.timerDelays(), [expected], what);
  };
  t.same(f.clock.timerDelays(), [0]);
  await next(120_000, 'after a success: the bundle\'s hint, 120 s');
  t.equal(await sample(f.registry, 'meshd_federation_refresh_interval_seconds', { trust_domain: 'west.example' }), 120);
  state.status = 500;
  await next(3_750, 'first failure: 5 s with equal jitter at 0.5');
  await next(7_500, 'second: 10 s');
  await next(15_000, 'third: 20 s');
  state.status = 200;
  state.body = doc(1);
  await next(60_000, 'a success again: a 1 s hint is raised to the 60 s floor');
  t.equal(await sample(f.registry, 'meshd_federation_refresh_failures_total', { trust_domain: 'west.example', reason: 'http-status' }), 3);
});
