/**
 * The real promtool on the federation metrics and alerts: the series meshd exposes pass
 * `promtool check metrics`, and the alerts in envoy/prometheus-rules.yml fire when they should
 * (test/federation/fixtures/federation-rules.test.yml).
 */
import t from 'tap';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/common/logger.js';
import { encodeBundleDocument } from '../../src/federation/bundle-document.js';
import { startBundleEndpoint } from '../../src/federation/bundle-endpoint.js';
import { DataDirBundleStore } from '../../src/federation/bundle-store.js';
import { FederatedBundles } from '../../src/federation/federated-bundles.js';
import { run } from '../telemetry/helpers/exposition.js';
import { ManualClock } from '../../src/common/clock.js';
import { SwitchableIdentity, tempDir, trustDomainCa } from './helpers.js';
import { repoPath } from '../helpers/repo.js';

const repo = (p: string): string => repoPath(p);

t.test('the federation series pass promtool check metrics', async (t) => {
  const east = await trustDomainCa(t, 'east.example');
  const registry = new Registry();
  const id = 'spiffe://east.example/ns/istio-system/sa/meshd';
  const endpoint = await startBundleEndpoint({ host: '127.0.0.1', port: 0, profile: { type: 'https_spiffe', identity: new SwitchableIdentity(await east.issue({ spiffeId: id })) }, bundle: () => east.bundleJwks(), logger: silentLogger(), registry });
  t.teardown(() => endpoint.close());
  const clock = new ManualClock();
  const bundles = new FederatedBundles({ ownTrustDomains: () => ['cluster.local'], store: new DataDirBundleStore(tempDir(t)), logger: silentLogger(), registry, clock });
  t.teardown(() => bundles.stop());
  await bundles.start([
    { trustDomain: 'east.example', endpoint: { url: `https://127.0.0.1:${endpoint.port}/`, profile: { type: 'https_spiffe', endpointSpiffeId: id } }, bundle: { kind: 'inline', document: encodeBundleDocument(east.bundleJwks()) } },
    { trustDomain: 'west.example', endpoint: { url: 'https://127.0.0.1:1/', profile: { type: 'https_web' } } },
  ]);
  t.ok((await bundles.refresh('east.example'))?.ok);
  t.notOk((await bundles.refresh('west.example'))?.ok);

  const text = await registry.metrics();
  for (const name of ['meshd_federation_bundle_last_refresh_timestamp_seconds', 'meshd_federation_refresh_interval_seconds', 'meshd_federation_bundle_sequence',
    'meshd_federation_bundle_authorities', 'meshd_federation_refresh_failures_total', 'meshd_federation_endpoint_requests_total']) {
    t.match(text, new RegExp(`^${name}\\{`, 'm'), `${name} is exposed`);
  }
  const r = await run('promtool', ['check', 'metrics'], text);
  t.equal(r.output, '', 'no lint findings');
  t.equal(r.code, 0);
});

t.test('the federation alerts fire when they should: promtool test rules', async (t) => {
  const r = await run('promtool', ['test', 'rules', repo('test/federation/fixtures/federation-rules.test.yml')]);
  t.equal(r.code, 0, r.output);
  t.match(r.output, /SUCCESS/);
});
