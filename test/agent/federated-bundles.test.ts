/**
 * `meshd agent` with a local Envoy: the bundles of the trust domains meshd federates with reach
 * the agent over one SDS stream (ALL) and are served on the agent's socket as ALL and
 * spiffe://<foreign td>; a foreign root rotation is pushed through both hops.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, silentLogger } from '../../src/common/logger.js';
import { systemClock } from '../../src/common/clock.js';
import { startAgent } from '../../src/agent/run-agent.js';
import { decodeStrictBytes } from '../../src/envoy/strict-decode.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import type { FederatedBundles } from '../../src/federation/index.js';
import { startTestMeshd } from '../e2e/helpers/meshd.js';
import { XdsTestClient, type SotwResponse, type SotwStream } from '../xds/helpers/xds-client.js';
import { spiffeBundlesOf } from '../svid/spiffe-tls.js';
import { until } from '../federation/helpers.js';

function bundlesIn(r: SotwResponse, name: string): Map<string, string[]> | undefined {
  const found = r.resources.find((x) => x.name === name);
  if (!found) return undefined;
  const d = decodeStrictBytes(TypeUrl.Secret, found.value);
  if (!d.valid) throw new Error(d.errors.join('; '));
  return spiffeBundlesOf(d.message.toJSON() as Record<string, any>);
}

/** Reads (and ACKs) responses until `check` holds for the latest ALL, or fails after 20 s. */
async function waitForAll(stream: SotwStream, check: (all: Map<string, string[]>) => boolean): Promise<SotwResponse> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await stream.next(Math.max(1, deadline - Date.now()));
    stream.ack(r);
    const all = bundlesIn(r, 'ALL');
    if (all && check(all)) return r;
  }
}

t.test('the agent serves meshd\'s federated bundles on its socket and passes a rotation on', async (t) => {
  const west = await startTestMeshd({ trustDomain: 'west.example', federation: { addr: '127.0.0.1:0' } });
  t.teardown(() => west.close());
  const dir = await mkdtemp(join(tmpdir(), 'meshd-agent-fed-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const configDir = join(dir, 'config');
  await import('node:fs/promises').then((fs) => fs.mkdir(configDir));
  await writeFile(join(configDir, 'mesh.yaml'), 'trustDomain: east.example\n');
  const westBundle = await (await fetch(`http://127.0.0.1:${west.ports.monitoring}/trust-bundle`)).text();
  await writeFile(join(configDir, 'west.yaml'), [
    'apiVersion: spire.spiffe.io/v1alpha1', 'kind: ClusterFederatedTrustDomain', 'metadata: {name: west}', 'spec:',
    '  trustDomain: west.example', `  bundleEndpointURL: https://127.0.0.1:${west.ports.federation}/`,
    '  bundleEndpointProfile:', '    type: https_spiffe', '    endpointSPIFFEID: spiffe://west.example/ns/istio-system/sa/meshd',
    '  trustDomainBundle: |', ...westBundle.trimEnd().split('\n').map((l) => `    ${l}`), '',
  ].join('\n'));
  const east = await startTestMeshd({ trustDomain: 'east.example', configDir });
  t.teardown(() => east.close());
  await until(() => east.foreignBundles.current().has('west.example'), 'east to trust west');

  await writeFile(join(dir, 'root.pem'), east.rootsPem());
  await writeFile(join(dir, 'token'), await east.token('shop', 'web'));
  const socket = join(dir, 'sds.sock');
  const running = await startAgent({
    namespace: 'shop', serviceAccount: 'web', trustDomain: 'east.example', tokenFile: join(dir, 'token'), outDir: join(dir, 'out'),
    meshdAddress: `127.0.0.1:${east.ports.secureGrpc}`, caRootFile: join(dir, 'root.pem'), sdsSocket: socket,
    logger: process.env.DEBUG_FEED ? createLogger({ level: 'debug' }) : silentLogger(), clock: systemClock,
  });
  t.teardown(() => running.stop());
  await running.ready();

  const client = new XdsTestClient(`unix:${socket}`);
  t.teardown(() => client.client.close());
  const stream = client.sotw('sds', { node: { id: 'sidecar~127.0.0.1~web-1.shop~shop.svc.cluster.local' } });
  stream.subscribe(TypeUrl.Secret, ['ALL', 'ROOTCA']);
  const first = await waitForAll(stream, (all) => all.has('west.example'));
  t.same(bundlesIn(first, 'ALL')!.get('west.example'), west.ca.trustBundle().rootsPem, 'west\'s roots, as west serves them');
  t.same(bundlesIn(first, 'ALL')!.get('east.example'), east.ca.trustBundle().rootsPem, 'the own entry is the agent\'s root-cert.pem');

  const named = client.sotw('sds', { node: { id: 'sidecar~127.0.0.1~web-1.shop~shop.svc.cluster.local' } });
  named.subscribe(TypeUrl.Secret, ['spiffe://west.example']);
  const westOnly = await named.next(10_000);
  t.same([...bundlesIn(westOnly, 'spiffe://west.example')!.keys()], ['west.example'], 'spiffe://west.example resolves on the agent\'s socket');

  await west.ca.prepareNextRoot({ overlapMs: 3_600_000 });
  t.equal(west.ca.trustBundle().rootsPem.length, 2);
  await (east.foreignBundles as FederatedBundles).refresh('west.example');
  const rotated = await waitForAll(stream, (all) => all.get('west.example')?.length === 2);
  t.same(bundlesIn(rotated, 'ALL')!.get('west.example'), west.ca.trustBundle().rootsPem, 'west\'s new root reaches the local Envoy through meshd and the agent');
});

t.test('an ALL secret is read strictly: the own trust domain\'s entry is ignored, a non-CA certificate refuses the whole answer', async (t) => {
  const { foreignBundlesOfAllSecret } = await import('../../src/agent/federated-bundle-feed.js');
  const { spiffeValidatorSecret } = await import('../../src/svid/secret-resources.js');
  const { encodeMessage, decodeMessage } = await import('../../src/envoy/protos.js');
  const { testCa } = await import('../ca/helpers.js');
  const west = await testCa({ trustDomain: 'west.example' });
  const evil = await testCa({ trustDomain: 'east.example' });
  const leaf = await west.issuer.issue({ spiffeId: 'spiffe://west.example/ns/a/sa/b' });
  const roundTrip = (bundles: Map<string, string[]>) => decodeMessage(TypeUrl.Secret, encodeMessage(TypeUrl.Secret, spiffeValidatorSecret('ALL', bundles)));
  const read = foreignBundlesOfAllSecret(roundTrip(new Map([['east.example', [evil.root.certPem]], ['west.example', [west.root.certPem]]])), 'east.example');
  t.same(read && [...read], [['west.example', { rootsPem: [west.root.certPem] }]], 'meshd\'s answer cannot replace the agent\'s own bundle');
  t.equal(foreignBundlesOfAllSecret(roundTrip(new Map([['west.example', [leaf.chainPem]]])), 'east.example'), undefined, 'a leaf is not an authority');
  t.equal(foreignBundlesOfAllSecret({ name: 'ALL', validation_context: { trusted_ca: {} } }, 'east.example'), undefined, 'not a SPIFFE validator');
});
