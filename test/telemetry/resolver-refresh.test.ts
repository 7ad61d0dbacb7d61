import t from 'tap';
import { ACCESS_LOG_NAMES } from '../../src/telemetry/access-log-config.js';
import type { WorkloadInfo } from '../../src/telemetry/workload-resolver.js';
import { startAlsFixture, WORKLOADS } from './helpers/als-fixture.js';
import { httpEntry } from './helpers/envoy-als.js';
import { parseExposition, select } from './helpers/exposition.js';
import { waitUntil } from './helpers/scenario.js';

t.test('a registry change (setResolver) relabels new entries on open streams, peers and local side alike', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  const s = await fx.stream({ ns: 'default', sa: 'bookinfo-reviews', ip: '10.0.0.2', workload: 'reviews-v2', logName: ACCESS_LOG_NAMES.inbound });
  const entry = () => httpEntry({ downstreamRemote: '10.0.0.9:40000', upstreamCluster: 'inbound|9080||', responseCode: 200 });
  await s.sendHttp([entry()]);
  await waitUntil(async () => select(parseExposition(await fx.registry.metrics()), 'istio_requests_total').length === 1);

  // The legacy client got a version label, reviews moved to v3.
  const next: Record<string, WorkloadInfo> = {
    ...WORKLOADS,
    '10.0.0.9': { ...WORKLOADS['10.0.0.9']!, labels: { app: 'legacy', version: 'v2' } },
    '10.0.0.2': { ...WORKLOADS['10.0.0.2']!, labels: { app: 'reviews', version: 'v3' } },
  };
  fx.ingester.setResolver({ byAddress: (ip) => next[ip] });
  await s.sendHttp([entry()]);
  await waitUntil(async () => select(parseExposition(await fx.registry.metrics()), 'istio_requests_total').length === 2);
  const series = select(parseExposition(await fx.registry.metrics()), 'istio_requests_total').map((x) => [x.labels.source_version, x.labels.destination_version, x.value]);
  t.strictSame(series, [['unknown', 'v2', 1], ['v2', 'v3', 1]]);
  s.cancel();
});
