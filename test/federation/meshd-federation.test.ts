/**
 * Two meshd instances, in process, with different trust domains: east serves its bundle endpoint
 * (https_spiffe, its own SVID), west federates with east through a ClusterFederatedTrustDomain in
 * its config dir. West fetches, stores and trusts east's bundle; removing the object ends it.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestMeshd } from '../e2e/helpers/meshd.js';
import { runMeshd } from '../e2e/helpers/serve-process.js';
import { fetchBundleBody } from '../../src/federation/fetch-bundle.js';
import { systemClock } from '../../src/common/clock.js';
import { until } from './helpers.js';

const EAST_ID = 'spiffe://east.example/ns/istio-system/sa/meshd';

t.test('west federates with east through east\'s bundle endpoint', async (t) => {
  const east = await startTestMeshd({ trustDomain: 'east.example', federation: { addr: '127.0.0.1:0' } });
  t.teardown(() => east.close());
  t.ok(east.ports.federation, 'east serves a bundle endpoint');
  const trustBundle = await (await fetch(`http://127.0.0.1:${east.ports.monitoring}/trust-bundle`)).text();

  const direct = await fetchBundleBody({ url: `https://127.0.0.1:${east.ports.federation}/`, profile: { type: 'https_spiffe', endpointSpiffeId: EAST_ID }, rootsPem: east.ca.trustBundle().rootsPem }, { clock: systemClock });
  t.ok(direct.ok, 'served over east\'s own SVID');
  t.equal(direct.ok && direct.body.toString(), trustBundle, 'the same document as /trust-bundle');

  const configDir = await mkdtemp(join(tmpdir(), 'meshd-fed-config-'));
  t.teardown(() => rm(configDir, { recursive: true, force: true }));
  await writeFile(join(configDir, 'mesh.yaml'), 'trustDomain: west.example\n');
  const cftd = [
    'apiVersion: spire.spiffe.io/v1alpha1',
    'kind: ClusterFederatedTrustDomain',
    'metadata: {name: east}',
    'spec:',
    '  trustDomain: east.example',
    `  bundleEndpointURL: https://127.0.0.1:${east.ports.federation}/`,
    '  bundleEndpointProfile:',
    '    type: https_spiffe',
    `    endpointSPIFFEID: ${EAST_ID}`,
    '  trustDomainBundle: |',
    ...trustBundle.trimEnd().split('\n').map((l) => `    ${l}`),
    '',
  ].join('\n');
  await writeFile(join(configDir, 'federation.yaml'), cftd);
  const west = await startTestMeshd({ trustDomain: 'west.example', configDir });
  t.teardown(() => west.close());
  t.equal(west.ports.federation, undefined, 'west serves no bundle endpoint: off by default');

  await until(() => west.foreignBundles.current().get('east.example')?.source === 'endpoint', 'west to fetch east\'s bundle');
  const held = west.foreignBundles.current().get('east.example')!;
  t.same(held.rootsPem, east.ca.trustBundle().rootsPem, 'east\'s roots, as east serves them');
  t.notOk(west.foreignBundles.current().has('west.example'), 'never a bundle for west\'s own trust domain');
  const stored = join(west.dataDir, 'federation', 'east.example.json');
  t.ok(existsSync(stored), 'stored in west\'s data dir');
  t.match(await west.metricsText(), /^meshd_federation_bundle_sequence\{trust_domain="east\.example"\} 1$/m);

  await rm(join(configDir, 'federation.yaml'));
  await until(() => west.foreignBundles.current().size === 0 && !existsSync(stored), 'the federation to end with its config');
});

t.test('meshd serve refuses bundle endpoint flags that cannot work', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'meshd-fed-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const base = ['serve', '--data-dir', dataDir, '--secure-grpc-addr', '127.0.0.1:0', '--grpc-addr', '127.0.0.1:0', '--monitoring-addr', '127.0.0.1:0'];
  const web = await runMeshd([...base, '--federation-addr', '127.0.0.1:0', '--federation-profile', 'https_web']);
  t.equal(web.code, 1);
  t.match(web.stderr, '--federation-profile https_web needs --federation-cert-file and --federation-key-file');
  const noAddr = await runMeshd([...base, '--federation-profile', 'https_web']);
  t.equal(noAddr.code, 1);
  t.match(noAddr.stderr, 'configure the bundle endpoint: add --federation-addr');
  t.notOk(existsSync(join(dataDir, 'ca')), 'refused before any CA material is made');
});
