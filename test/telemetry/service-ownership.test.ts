import t from 'tap';
import { ACCESS_LOG_NAMES } from '../../src/telemetry/access-log-config.js';
import { meshWorkloadResolver } from '../../src/telemetry/mesh-resolver.js';
import { indexFor } from '../../src/mesh/mesh-index.js';
import { buildProxyConfig } from '../../src/xds/generators/proxy-config.js';
import { docs, se, snapshotOf, we, workload } from '../xds/generators/fixtures.js';
import { startAlsFixture } from './helpers/als-fixture.js';
import { httpEntry } from './helpers/envoy-als.js';
import { parseExposition, select } from './helpers/exposition.js';
import { waitUntil } from './helpers/scenario.js';

/**
 * Two ServiceEntries claim one host, and two select one workload; in each pair the newer one comes
 * first in the file. Istio gives a host to the oldest ServiceEntry (pilot/pkg/model/push_context.go
 * initServiceRegistry, sidecar.go appendSidecarServices), and so does meshd's xDS: telemetry must
 * label traffic with the same ServiceEntry, not with the first one in file order.
 */
const http = [{ number: 80, name: 'http', protocol: 'HTTP' }];
const NEW = '2024-06-01T00:00:00Z';
const OLD = '2020-01-01T00:00:00Z';
const snapshot = snapshotOf(docs(
  se('team-new', 'api-new', { hosts: ['api.example.com'], ports: http, created: NEW, endpoints: [{ address: '10.2.0.1' }] }),
  se('shop', 'web-new', { hosts: ['web-new.example.com'], ports: http, selector: { app: 'web' }, created: NEW }),
  se('team-old', 'api-old', { hosts: ['api.example.com'], ports: http, created: OLD, endpoints: [{ address: '10.1.0.1' }] }),
  se('shop', 'web-old', { hosts: ['web-old.example.com'], ports: http, selector: { app: 'web' }, created: OLD }),
  we('shop', 'web-1', { address: '10.0.0.1', labels: { app: 'web' }, serviceAccount: 'web' }),
  we('client', 'client-1', { address: '10.0.1.1', labels: { app: 'client' }, serviceAccount: 'client' }),
));

t.test('xDS serves the host from the oldest ServiceEntry, and a workload port from the oldest selecting one', async (t) => {
  const client = buildProxyConfig(snapshot, workload(snapshot, 'client', 'client-1'));
  const cla = client.endpoints.find((e) => e.cluster_name === 'outbound|80||api.example.com');
  const addresses = cla?.endpoints?.flatMap((l) => l.lb_endpoints ?? []).map((e) => e.endpoint?.address?.socket_address?.address);
  t.strictSame(addresses, ['10.1.0.1'], 'the endpoints of team-old/api-old');
  t.match(client.warnings.join('\n'), /host api\.example\.com is declared by ServiceEntry team-old\/api-old and ServiceEntry team-new\/api-new; the oldest \(team-old\/api-old\) is used/);
  const inbound = indexFor(snapshot).inboundPorts(workload(snapshot, 'shop', 'web-1')).ports;
  t.strictSame(inbound.map((p) => p.services.map((s) => s.entry.meta.name)), [['web-old', 'web-new']]);
});

t.test('telemetry labels the host and the workload with the same ServiceEntries', async (t) => {
  const resolver = meshWorkloadResolver(snapshot, 'Kubernetes');
  t.strictSame(resolver.serviceByHost?.('api.example.com'), { name: 'api.example.com', namespace: 'team-old' });
  t.match(resolver.byAddress('10.0.0.1'), { workload: 'web-1', service: 'web-old.example.com' });

  const fx = await startAlsFixture({ resolver });
  t.teardown(() => fx.close());
  const out = await fx.stream({ ns: 'client', sa: 'client', ip: '10.0.1.1', workload: 'client-1', logName: ACCESS_LOG_NAMES.outbound });
  await out.sendHttp([httpEntry({ upstreamCluster: 'outbound|80||api.example.com', authority: 'api.example.com', upstreamRemote: '10.1.0.1:80', responseCode: 200 })]);
  const inbound = await fx.stream({ ns: 'shop', sa: 'web', ip: '10.0.0.1', workload: 'web-1', logName: ACCESS_LOG_NAMES.inbound });
  await inbound.sendHttp([httpEntry({ upstreamCluster: 'inbound|80||', authority: '10.0.0.1', downstreamRemote: '10.0.1.1:40000', responseCode: 200 })]);
  const series = async () => select(parseExposition(await fx.registry.metrics()), 'istio_requests_total');
  await waitUntil(async () => (await series()).length === 2);
  const labels = (await series()).map((s) => [s.labels.reporter, s.labels.destination_service, s.labels.destination_service_namespace]).sort();
  t.strictSame(labels, [
    ['destination', 'web-old.example.com', 'shop'],
    ['source', 'api.example.com', 'team-old'],
  ]);
  out.cancel();
  inbound.cancel();
});
