/**
 * Each way a foreign bundle endpoint can fail, against real HTTPS endpoints on loopback:
 * west.example over https_web (a test Web PKI made with openssl) and east.example over
 * https_spiffe (meshd's own bundle endpoint serving an X509-SVID of east's CA). Both are fetched
 * once (the last good state), then one thing goes wrong. Every time: the last good bundles stay
 * exactly as they were, nothing is announced, the stored bundles are untouched, and the reason
 * is logged and counted.
 */
import t, { type Test as Tap } from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { ManagedCertificateAuthority } from '../../src/ca/index.js';
import { encodeBundleDocument, MAX_BUNDLE_BYTES } from '../../src/federation/bundle-document.js';
import { ManualClock } from '../../src/common/clock.js';
import { startBundleEndpoint } from '../../src/federation/bundle-endpoint.js';
import type { RefreshFailure, RefreshOutcome } from '../../src/federation/bundle-refresher.js';
import { DataDirBundleStore } from '../../src/federation/bundle-store.js';
import { FederatedBundles, type TrustedForeignBundle } from '../../src/federation/federated-bundles.js';
import type { FederationRelationship } from '../../src/federation/relationship.js';
import {
  captureLogger, rawHttpsEndpoint, sample, SwitchableIdentity, tempDir, trustDomainCa, until, webPki,
  type RawEndpoint, type WebPki,
} from './helpers.js';

const EAST_ID = 'spiffe://east.example/ns/istio-system/sa/meshd';
const FETCH_TIMEOUT_MS = 5_000;

interface WestBehaviour {
  mode: 'serve' | 'hang';
  status: number;
  body: string;
  location?: string;
}

interface Meshes {
  west: ManagedCertificateAuthority;
  east: ManagedCertificateAuthority;
  westEndpoint: RawEndpoint;
  westBehaviour: WestBehaviour;
  westPki: WebPki;
  eastIdentity: SwitchableIdentity;
  bundles: FederatedBundles;
  registry: Registry;
  clock: ManualClock;
  lines: () => Array<Record<string, unknown>>;
  dir: string;
  /** Fails the test unless the held bundles, the stored files and the announcements are as before. */
  expectNothingChanged(t: Tap, outcome: RefreshOutcome | undefined, trustDomain: string, reason: RefreshFailure): Promise<void>;
}

function plain(map: ReadonlyMap<string, TrustedForeignBundle>): unknown {
  return JSON.parse(JSON.stringify([...map.entries()], (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)));
}

function storedFiles(dataDir: string): Record<string, string> {
  const dir = join(dataDir, 'federation');
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

async function twoMeshes(t: Tap): Promise<Meshes> {
  const dir = tempDir(t, 'meshd-fed-');
  const westPki = webPki(dir, 'west');
  const west = await trustDomainCa(t, 'west.example');
  const east = await trustDomainCa(t, 'east.example');

  const westBehaviour: WestBehaviour = { mode: 'serve', status: 200, body: encodeBundleDocument(west.bundleJwks()) };
  const westEndpoint = await rawHttpsEndpoint(westPki, (_req, res) => {
    if (westBehaviour.mode === 'hang') return; // accepts the request, never answers
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (westBehaviour.location) headers.location = westBehaviour.location;
    res.writeHead(westBehaviour.status, headers);
    res.end(westBehaviour.body);
  });
  t.teardown(() => westEndpoint.close());

  const eastIdentity = new SwitchableIdentity(await east.issue({ spiffeId: EAST_ID }));
  const eastEndpoint = await startBundleEndpoint({ host: '127.0.0.1', port: 0, profile: { type: 'https_spiffe', identity: eastIdentity }, bundle: () => east.bundleJwks(), logger: captureLogger().logger });
  t.teardown(() => eastEndpoint.close());

  const relationships: FederationRelationship[] = [
    { trustDomain: 'west.example', endpoint: { url: westEndpoint.url, profile: { type: 'https_web' } } },
    {
      trustDomain: 'east.example',
      endpoint: { url: `https://127.0.0.1:${eastEndpoint.port}/`, profile: { type: 'https_spiffe', endpointSpiffeId: EAST_ID } },
      bundle: { kind: 'inline', document: encodeBundleDocument(east.bundleJwks()) },
    },
  ];
  const clock = new ManualClock();
  const log = captureLogger();
  const registry = new Registry();
  const bundles = new FederatedBundles({
    ownTrustDomains: () => ['cluster.local'], store: new DataDirBundleStore(dir), logger: log.logger, registry,
    clock, random: () => 0.5, extraWebCaPem: westPki.caPem, fetchTimeoutMs: FETCH_TIMEOUT_MS,
  });
  t.teardown(() => bundles.stop());
  await bundles.start(relationships);
  t.same(clock.timerDelays(), [0, 0], 'both refresh at once');
  clock.advance(0);
  for (const td of ['west.example', 'east.example']) {
    const first = await bundles.refresh(td); // joins the refresh under way
    if (!first?.ok) throw new Error(`${td}: ${JSON.stringify(first)}`);
  }
  t.same(clock.timerDelays(), [300_000, 300_000], 'then again after the refresh hint (300 s; jitter drawn at 0.5)');
  clock.advance(60_000); // later failures happen a minute after the last good fetch
  const before = plain(bundles.current());
  const files = storedFiles(dir);
  const announced: unknown[] = [];
  bundles.onChange((m) => announced.push(plain(m)));
  const metricsBefore = await registry.getMetricsAsJSON();

  return {
    west, east, westEndpoint, westBehaviour, westPki, eastIdentity, bundles, registry, clock, lines: log.lines, dir,
    async expectNothingChanged(t, outcome, trustDomain, reason) {
      t.same(outcome && !outcome.ok ? outcome.reason : outcome, reason, `refused: ${reason}`);
      t.same(plain(bundles.current()), before, 'both last good bundles stay in force, unchanged');
      t.same(announced, [], 'no change announced');
      t.same(storedFiles(dir), files, 'the stored bundles are untouched');
      t.equal(await sample(registry, 'meshd_federation_refresh_failures_total', { trust_domain: trustDomain, reason }), 1, 'counted once, by reason');
      const line = log.lines().find((l) => l.reason === reason);
      t.ok(line, 'logged with its reason');
      t.equal(line?.level, 40, 'as a warning');
      t.equal(line?.trustDomain, trustDomain);
      t.match(String(line?.msg), new RegExp(`^refreshing the bundle of ${trustDomain.replace('.', '\\.')} failed: .*; the last good bundle stays in force$`));
      const after = await registry.getMetricsAsJSON();
      const gauges = (m: typeof after): unknown => m.filter((x) => String(x.type) === 'gauge' && x.name.startsWith('meshd_federation_')).map((x) => [x.name, x.values]);
      t.same(gauges(after), gauges(metricsBefore), 'sequence, authorities, last refresh and interval gauges unchanged');
    },
  };
}

t.test('the endpoint is down', async (t) => {
  const m = await twoMeshes(t);
  await m.westEndpoint.close();
  const r = await m.bundles.refresh('west.example');
  await m.expectNothingChanged(t, r, 'west.example', 'unreachable');
  t.match(r && !r.ok && r.message, /^cannot reach the bundle endpoint: ECONNREFUSED/);
});

t.test('the endpoint is slow: the fetch times out on the injected timer', async (t) => {
  const m = await twoMeshes(t);
  m.westBehaviour.mode = 'hang';
  const seen = m.westEndpoint.requests;
  const pending = m.bundles.refresh('west.example');
  await until(() => m.westEndpoint.requests > seen, 'the request to reach the endpoint');
  t.ok(m.clock.timerDelays().includes(FETCH_TIMEOUT_MS), 'a deadline is armed');
  m.clock.advance(FETCH_TIMEOUT_MS);
  const r = await pending;
  await m.expectNothingChanged(t, r, 'west.example', 'timeout');
  t.match(r && !r.ok && r.message, `no complete answer from the bundle endpoint within ${FETCH_TIMEOUT_MS} ms`);
});

t.test('the endpoint serves an invalid JWKS', async (t) => {
  const m = await twoMeshes(t);
  m.westBehaviour.body = '{"keys": {"use": "x509-svid"}}';
  const r = await m.bundles.refresh('west.example');
  await m.expectNothingChanged(t, r, 'west.example', 'invalid-jwks');
  t.match(r && !r.ok && r.message, /the bundle served by https:\/\/127\.0\.0\.1:\d+\/ is refused: "keys" must be an array, got an object/);

  m.westBehaviour.body = '<html>maintenance</html>';
  const notJson = await m.bundles.refresh('west.example');
  t.same(notJson && !notJson.ok && notJson.reason, 'malformed-json', 'not JSON at all: refused too');
  m.westBehaviour.body = '{"keys": [], "keys": []}';
  const dup = await m.bundles.refresh('west.example');
  t.same(dup && !dup.ok && dup.reason, 'malformed-json', 'a duplicate member: refused too');
  t.same(m.bundles.current().get('west.example')?.sequence, 1n, 'still the last good bundle');
});

t.test('the endpoint serves the bundle of another trust domain', async (t) => {
  const m = await twoMeshes(t);
  const north = await trustDomainCa(t, 'north.example');
  m.westBehaviour.body = encodeBundleDocument(north.bundleJwks());
  const r = await m.bundles.refresh('west.example');
  await m.expectNothingChanged(t, r, 'west.example', 'wrong-trust-domain');
  t.match(r && !r.ok && r.message, /the certificate is an authority of trust domain north\.example \(spiffe:\/\/north\.example\), not west\.example/);
});

t.test('the endpoint serves keys with the wrong use', async (t) => {
  const m = await twoMeshes(t);
  const doc = JSON.parse(encodeBundleDocument(m.west.bundleJwks())) as { keys: Array<Record<string, unknown>> };
  for (const k of doc.keys) k.use = 'X509-SVID';
  m.westBehaviour.body = JSON.stringify(doc);
  const r = await m.bundles.refresh('west.example');
  await m.expectNothingChanged(t, r, 'west.example', 'no-x509-authorities');
  t.match(r && !r.ok && r.message, /none of its 1 keys is a usable x509-svid authority \(keys\[0\]: unknown "use" "X509-SVID"\)/);
});

t.test('https_web: the endpoint\'s certificate chain does not verify (another CA)', async (t) => {
  const m = await twoMeshes(t);
  const stranger = webPki(m.dir, 'stranger');
  m.westEndpoint.setTls(stranger);
  const r = await m.bundles.refresh('west.example');
  await m.expectNothingChanged(t, r, 'west.example', 'tls');
  t.match(r && !r.ok && r.message, /^the bundle endpoint's certificate was not accepted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/);
});

t.test('https_spiffe: the endpoint\'s SVID chain does not verify (a CA that is not in the held bundle)', async (t) => {
  const m = await twoMeshes(t);
  const impostor = await trustDomainCa(t, 'east.example'); // the same trust domain name, another CA
  m.eastIdentity.set(await impostor.issue({ spiffeId: EAST_ID }));
  const r = await m.bundles.refresh('east.example');
  await m.expectNothingChanged(t, r, 'east.example', 'tls');
});

t.test('https_spiffe: the endpoint presents the wrong SPIFFE ID', async (t) => {
  const m = await twoMeshes(t);
  m.eastIdentity.set(await m.east.issue({ spiffeId: 'spiffe://east.example/ns/default/sa/web' }));
  const r = await m.bundles.refresh('east.example');
  await m.expectNothingChanged(t, r, 'east.example', 'endpoint-id');
  t.equal(r && !r.ok && r.message, `the bundle endpoint is not ${EAST_ID}: the server presented "spiffe://east.example/ns/default/sa/web", not ${EAST_ID}`);
});

t.test('https_web: a valid certificate for another host that carries a SPIFFE ID gets the https_spiffe hint', async (t) => {
  const m = await twoMeshes(t);
  m.westEndpoint.setTls(webPki(m.dir, 'spiffe-ish', 'DNS:meshd.west.example,URI:spiffe://west.example/ns/istio-system/sa/meshd', m.westPki));
  const r = await m.bundles.refresh('west.example');
  t.same(r && !r.ok && r.reason, 'tls');
  t.match(r && !r.ok && r.message, /^the bundle endpoint's certificate was not accepted \(ERR_TLS_CERT_ALTNAME_INVALID: .*\); it carries SPIFFE ID spiffe:\/\/west\.example\/ns\/istio-system\/sa\/meshd: maybe use the https_spiffe profile instead of https_web$/);
});

t.test('the sequence goes backwards with other authorities (an old bundle served again)', async (t) => {
  const m = await twoMeshes(t);
  const old = m.westBehaviour.body;
  await m.west.prepareNextRoot({ overlapMs: 3_600_000 });
  m.westBehaviour.body = encodeBundleDocument(m.west.bundleJwks());
  const rotated = await m.bundles.refresh('west.example');
  t.same(rotated, { ok: true, changed: true }, 'the rotated bundle (sequence 2) is taken');
  t.same(m.bundles.current().get('west.example')?.rootsPem.length, 2);

  m.westBehaviour.body = old;
  const r = await m.bundles.refresh('west.example');
  t.same(r && !r.ok && r.reason, 'sequence-regressed');
  t.equal(r && !r.ok && r.message, 'spiffe_sequence went back from 2 to 1 with other authorities: an old bundle served again');
  t.equal(m.bundles.current().get('west.example')?.sequence, 2n, 'sequence 2 and both roots stay');
  t.equal(m.bundles.current().get('west.example')?.rootsPem.length, 2);
  t.equal(await sample(m.registry, 'meshd_federation_refresh_failures_total', { trust_domain: 'west.example', reason: 'sequence-regressed' }), 1);
});

t.test('the endpoint answers an error status, redirects to plain http, or sends too much', async (t) => {
  const m = await twoMeshes(t);
  m.westBehaviour.status = 503;
  m.westBehaviour.body = 'overloaded';
  const r = await m.bundles.refresh('west.example');
  await m.expectNothingChanged(t, r, 'west.example', 'http-status');
  t.equal(r && !r.ok && r.message, 'the bundle endpoint answered HTTP 503 Service Unavailable');

  m.westBehaviour.status = 302;
  m.westBehaviour.location = 'http://127.0.0.1:1/bundle';
  const redirect = await m.bundles.refresh('west.example');
  t.same(redirect && !redirect.ok && redirect.reason, 'redirect');
  t.equal(redirect && !redirect.ok && redirect.message, 'redirected to "http://127.0.0.1:1/bundle"; a bundle endpoint must be https without userinfo');

  m.westBehaviour.status = 200;
  delete m.westBehaviour.location;
  m.westBehaviour.body = ' '.repeat(MAX_BUNDLE_BYTES + 1);
  const big = await m.bundles.refresh('west.example');
  t.same(big && !big.ok && big.reason, 'too-large');
  t.equal(m.bundles.current().get('west.example')?.sequence, 1n, 'still the last good bundle');
});

t.test('a redirect to another https URL is followed with the same checks, and not remembered', async (t) => {
  const m = await twoMeshes(t);
  const target = await rawHttpsEndpoint(m.westPki, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(encodeBundleDocument(m.west.bundleJwks()));
  });
  t.teardown(() => target.close());
  m.westBehaviour.status = 307;
  m.westBehaviour.location = target.url;
  const r = await m.bundles.refresh('west.example');
  t.same(r, { ok: true, changed: false }, 'followed, and the same bundle confirmed');
  t.equal(target.requests, 1);
  t.equal(m.bundles.current().get('west.example')?.from, m.westEndpoint.url, 'recorded as the configured URL');
});
