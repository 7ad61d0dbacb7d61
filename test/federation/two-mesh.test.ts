/**
 * Two meshes on loopback, east.example and west.example, each with its own CA, each federating
 * the other's bundle endpoint (https_spiffe, authenticated by the bundle it already holds). A
 * workload of east calls a workload of west over real mTLS with the SVIDs and ALL bundles each
 * mesh's SDS delivered; a third, unfederated mesh's workload is refused. West rotates its root:
 * the new root reaches east's workloads through the bundle endpoint before it signs anything, and
 * calls keep working across the rotation with no failure.
 */
import t, { type Test as Tap } from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { ManualClock } from '../../src/common/clock.js';
import { decodeStrictBytes } from '../../src/envoy/strict-decode.js';
import type { FederatedBundles } from '../../src/federation/index.js';
import { startTestMeshd, bearer, type TestMeshd } from '../e2e/helpers/meshd.js';
import type { SotwResponse, SotwStream } from '../xds/helpers/xds-client.js';
import { testCa } from '../ca/helpers.js';
import { spiffeBundlesOf, spiffeTlsCall, spiffeTlsServer, type Credentials } from '../svid/spiffe-tls.js';
import { until } from './helpers.js';

const meshdId = (td: string): string => `spiffe://${td}/ns/istio-system/sa/meshd`;

async function meshWithConfigDir(t: Tap, trustDomain: string, clock?: ManualClock): Promise<{ meshd: TestMeshd; configDir: string }> {
  const configDir = await mkdtemp(join(tmpdir(), `meshd-two-mesh-${trustDomain}-`));
  t.teardown(() => rm(configDir, { recursive: true, force: true }));
  await writeFile(join(configDir, 'mesh.yaml'), `trustDomain: ${trustDomain}\n`);
  const meshd = await startTestMeshd({ trustDomain, configDir, federation: { addr: '127.0.0.1:0' }, ...(clock ? { clock } : {}) });
  t.teardown(() => meshd.close());
  return { meshd, configDir };
}


/** Federate `from` with `to` through `to`'s bundle endpoint, bootstrapped with `to`'s current bundle. */
async function federate(from: { configDir: string }, to: TestMeshd): Promise<void> {
  const bundle = await (await fetch(`http://127.0.0.1:${to.ports.monitoring}/trust-bundle`)).text();
  await writeFile(join(from.configDir, `federate-${to.trustDomain}.yaml`), [
    'apiVersion: spire.spiffe.io/v1alpha1', 'kind: ClusterFederatedTrustDomain', `metadata: {name: ${to.trustDomain.split('.')[0]}}`, 'spec:',
    `  trustDomain: ${to.trustDomain}`, `  bundleEndpointURL: https://127.0.0.1:${to.ports.federation}/`,
    '  bundleEndpointProfile:', '    type: https_spiffe', `    endpointSPIFFEID: ${meshdId(to.trustDomain)}`,
    '  trustDomainBundle: |', ...bundle.trimEnd().split('\n').map((l) => `    ${l}`), '',
  ].join('\n'));
}

function secret(r: SotwResponse, name: string): Record<string, any> {
  const found = r.resources.find((x) => x.name === name);
  if (!found) throw new Error(`no secret ${name}`);
  const d = decodeStrictBytes(TypeUrl.Secret, found.value);
  if (!d.valid) throw new Error(`secret ${name} refused by Envoy's protos: ${d.errors.join('; ')}`);
  return d.message.toJSON() as Record<string, any>;
}

/** A workload's SDS stream (default + ALL), ACKing every response and keeping the latest material. */
class Workload {
  credentials!: Credentials;
  bundles!: Map<string, string[]>;
  private stream!: SotwStream;
  private stopped = false;

  static async start(meshd: TestMeshd, ns: string, sa: string, nodeId: string): Promise<Workload> {
    const w = new Workload();
    w.stream = meshd.tlsClient().sotw('sds', { node: { id: nodeId }, metadata: bearer(await meshd.token(ns, sa)) });
    w.stream.subscribe(TypeUrl.Secret, ['default', 'ALL']);
    w.apply(await w.stream.next(10_000));
    void w.read();
    return w;
  }

  private apply(r: SotwResponse): void {
    this.stream.ack(r);
    for (const res of r.resources) {
      if (res.name === 'default') {
        const s = secret(r, 'default');
        this.credentials = {
          chainPem: Buffer.from(s.tls_certificate.certificate_chain.inline_bytes, 'base64').toString(),
          keyPem: Buffer.from(s.tls_certificate.private_key.inline_bytes, 'base64').toString(),
        };
      } else if (res.name === 'ALL') {
        this.bundles = spiffeBundlesOf(secret(r, 'ALL'));
      }
    }
  }

  private async read(): Promise<void> {
    while (!this.stopped) {
      try {
        this.apply(await this.stream.next(600_000));
      } catch {
        return;
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.stream.cancel();
  }
}

t.test('east calls west over mTLS through federated bundles; west\'s root rotation reaches east first and no call fails', async (t) => {
  const east = await meshWithConfigDir(t, 'east.example');
  // West's clock is driven by the test: its new root starts signing exactly when the test says.
  const westClock = new ManualClock(Date.now());
  const west = await meshWithConfigDir(t, 'west.example', westClock);
  await federate(west, east.meshd);
  await federate(east, west.meshd);
  // West's config watcher debounces on its clock: move it along in small steps while waiting.
  await until(() => { westClock.advance(100); return west.meshd.foreignBundles.current().has('east.example') && east.meshd.foreignBundles.current().has('west.example'); }, 'each mesh to load the other\'s configured bundle', 20_000);
  await (west.meshd.foreignBundles as FederatedBundles).refresh('east.example'); // west's refresh timers run on its manual clock
  await until(() => east.meshd.foreignBundles.current().get('west.example')?.source === 'endpoint'
    && west.meshd.foreignBundles.current().get('east.example')?.source === 'endpoint', 'each mesh to fetch the other\'s bundle from its endpoint', 20_000);

  const client = await Workload.start(east.meshd, 'shop', 'web', 'web-1');
  const serverWl = await Workload.start(west.meshd, 'pay', 'api', 'api-1');
  t.teardown(() => { client.stop(); serverWl.stop(); });
  await until(() => client.bundles.has('west.example') && serverWl.bundles.has('east.example'), 'both ALL secrets to carry the other mesh');
  t.same([...client.bundles.keys()], ['east.example', 'west.example'], 'east\'s ALL: one entry per trust domain');
  t.same(client.bundles.get('west.example'), west.meshd.ca.trustBundle().rootsPem, 'west\'s roots as west serves them');

  const westId = 'spiffe://west.example/ns/pay/sa/api';
  const eastId = 'spiffe://east.example/ns/shop/sa/web';
  const server = await spiffeTlsServer(serverWl.credentials, () => serverWl.bundles);
  t.teardown(() => server.close());
  t.equal(await spiffeTlsCall(server.port, client.credentials, westId, client.bundles), `ok ${eastId}`, 'east\'s workload reaches west\'s over mTLS');
  t.match(server.verdicts.at(-1), { ok: true, trustDomain: 'east.example', spiffeId: eastId }, 'west verified east\'s SVID with east\'s bundle');

  const north = await testCa({ trustDomain: 'north.example' });
  const stranger = await north.issuer.issue({ spiffeId: 'spiffe://north.example/ns/x/sa/y' });
  await t.rejects(spiffeTlsCall(server.port, stranger, westId, client.bundles), 'an unfederated mesh\'s workload is refused');
  t.match(server.verdicts.at(-1), { ok: false, reason: 'unknown-trust-domain' });

  // Calls run back to back through the whole rotation; each call uses the material its side holds now.
  let ok = 0;
  const failures: string[] = [];
  let running = true;
  const caller = (async () => {
    while (running) {
      try {
        await spiffeTlsCall(server.port, client.credentials, westId, client.bundles);
        ok++;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  })();

  const debug = async (): Promise<{ text: string; west: Record<string, any> }> => {
    const text = await (await fetch(`http://127.0.0.1:${east.meshd.ports.monitoring}/debug/federation`)).text();
    return { text, west: (JSON.parse(text) as { trustDomains: Array<Record<string, any>> }).trustDomains.find((d) => d.trustDomain === 'west.example')! };
  };
  const seen = await debug();
  t.match(seen.west, { sequence: String(west.meshd.ca.trustBundle().sequence), source: 'endpoint', from: `https://127.0.0.1:${west.meshd.ports.federation}/` },
    '/debug/federation shows west\'s bundle, its sequence and where it came from');
  t.type(seen.west.ageSeconds, 'number');
  t.equal(seen.west.authorities.length, 1);
  t.notMatch(seen.text, /PRIVATE|BEGIN/, 'fingerprints only: no key, no PEM');

  const oldRoots = west.meshd.ca.trustBundle().rootsPem;
  const overlapMs = 60_000;
  const prepared = await west.meshd.ca.prepareNextRoot({ overlapMs });
  const newRoot = west.meshd.ca.trustBundle().rootsPem.find((pem) => !oldRoots.includes(pem))!;
  t.ok(newRoot, 'west\'s bundle holds the new root during the overlap');
  // East refreshes now rather than at the refresh hint (minutes): the same fetch, sooner.
  const outcome = await (east.meshd.foreignBundles as FederatedBundles).refresh('west.example');
  t.match(outcome, { ok: true });
  await until(() => client.bundles.get('west.example')?.includes(newRoot) === true, 'east\'s SDS to push ALL with west\'s new root');
  t.match((await debug()).west, { sequence: String(west.meshd.ca.trustBundle().sequence) }, 'the new sequence shows in /debug/federation');
  t.equal((await debug()).west.authorities.length, 2);
  t.equal(west.meshd.ca.status().roots.find((r) => r.id === prepared.id)?.state, 'prepared', 'east\'s workloads hold west\'s new root before it signs anything');

  // After the overlap the new root signs: a west workload that connects now gets an SVID from it.
  westClock.advance(overlapMs);
  await west.meshd.ca.refresh();
  t.equal(west.meshd.ca.status().roots.find((r) => r.id === prepared.id)?.state, 'active', 'west\'s new root signs');
  const rotated = await Workload.start(west.meshd, 'pay', 'api', 'api-2');
  t.teardown(() => rotated.stop());
  const leaf = new X509Certificate(rotated.credentials.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
  t.ok(leaf.checkIssued(new X509Certificate(newRoot)), 'the new SVID is signed by the new root');
  const before = ok;
  server.setCredentials(rotated.credentials);
  await until(() => ok >= before + 5, 'calls against the rotated server SVID', 20_000);
  running = false;
  await caller;
  t.same(failures, [], `no call failed across the rotation (${ok} calls)`);
  t.match(server.verdicts.at(-1), { ok: true, trustDomain: 'east.example' });
});
