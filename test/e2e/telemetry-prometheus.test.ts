import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { ACCESS_LOG_NAMES } from '../../src/telemetry/access-log-config.js';
import { startTestMeshd } from './helpers/meshd.js';
import { EnvoyAlsStream, httpEntry, identifier, tcpEntry } from '../telemetry/helpers/envoy-als.js';
import { startPrometheus } from '../telemetry/helpers/prometheus.js';
import { run } from '../telemetry/helpers/exposition.js';
import { repoPath } from '../helpers/repo.js';

/**
 * The whole telemetry path on a real meshd: a sidecar of payments/api-1 (STRICT) streams its
 * access logs to meshd's TLS gRPC port with its token; the real Prometheus scrapes meshd's
 * /metrics; PromQL sees mTLS requests from shop/web-1 and plaintext connections refused (NR).
 */
const meshd = await startTestMeshd({ configDir: 'examples/config' });
t.teardown(() => meshd.close());

const api1 = { id: 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local', metadata: { NAMESPACE: 'payments', WORKLOAD_NAME: 'api-1', LABELS: { app: 'payments-api', version: 'v1' } } };
const creds = grpc.credentials.createSsl(Buffer.from(meshd.rootsPem()), null, null, { checkServerIdentity: () => undefined });
const client = new grpc.Client(`127.0.0.1:${meshd.ports.secureGrpc}`, creds, { 'grpc.ssl_target_name_override': 'meshd' });
t.teardown(() => client.close());
const metadata = new grpc.Metadata();
metadata.set('authorization', `Bearer ${await meshd.token('payments', 'payments-api')}`);

const inbound = new EnvoyAlsStream(client, identifier(api1, ACCESS_LOG_NAMES.inbound), metadata);
const local = { downstreamLocal: '127.0.0.11:8080', upstreamRemote: '127.0.0.1:8080', upstreamCluster: 'inbound|8080||' };
const fromWeb = { ...local, downstreamRemote: '127.0.0.21:41000', tls: { peerSan: 'spiffe://cluster.local/ns/shop/sa/shop-web', localSan: 'spiffe://cluster.local/ns/payments/sa/payments-api' } };
await inbound.sendHttp([1, 2, 3].map(() => httpEntry({ ...fromWeb, authority: 'api.payments.svc.cluster.local:8080', responseCode: 200, durationMs: 4 })));
const listener = new EnvoyAlsStream(client, identifier(api1, ACCESS_LOG_NAMES.inboundListener), metadata);
await listener.sendTcp([1, 2].map((i) => tcpEntry({ downstreamRemote: `127.0.0.99:5000${i}`, downstreamLocal: '127.0.0.11:8080', flags: ['no_route_found'] })));

const prom = await startPrometheus({
  targets: [`127.0.0.1:${meshd.ports.monitoring}`],
  scrapeIntervalSeconds: 1,
  ruleFiles: [repoPath('envoy/prometheus-rules.yml')],
});
t.teardown(() => prom.stop());

t.test('Prometheus scrapes a running meshd: requests by response_flags, NR from plaintext under STRICT, mTLS peers named from the registry', async (t) => {
  const byFlags = await prom.waitFor(async () => {
    const result = await prom.query('sum by (response_flags) (istio_requests_total)');
    const m = Object.fromEntries(result.map((s) => [s.metric.response_flags!, Number(s.value[1])]));
    return m['-'] === 3 && m.NR === 2 ? m : undefined;
  });
  t.strictSame(byFlags, { '-': 3, NR: 2 });

  const mtls = await prom.query('sum by (source_workload, source_workload_namespace, destination_workload, connection_security_policy) (istio_requests_total{response_flags="-"})');
  t.strictSame(mtls.map((s) => s.metric), [{ source_workload: 'web-1', source_workload_namespace: 'shop', destination_workload: 'api-1', connection_security_policy: 'mutual_tls' }]);
  const refused = await prom.query('sum by (source_workload, destination_workload, connection_security_policy) (istio_requests_total{response_flags="NR"})');
  t.strictSame(refused.map((s) => s.metric), [{ source_workload: 'unknown', destination_workload: 'api-1', connection_security_policy: 'none' }], 'an outside plaintext client is "unknown", never an error');
  const own = await prom.query('pilot_xds');
  t.ok(own.length >= 1, 'the control plane\'s own metrics are scraped from the same endpoint');
});

t.test("promtool check metrics on meshd's /metrics: parses, and the only lint findings are Istio's own metric names", async (t) => {
  const text = await meshd.metricsText();
  const result = await run('promtool', ['check', 'metrics'], text);
  t.not(result.code, 1, `no parse error: ${result.output}`);
  const findings = result.output.split('\n').filter((l) => l.trim() !== '');
  // Istio exports these names as written (counters without _total; a histogram in milliseconds).
  const istioNamed = new RegExp('^(pilot_[a-z_]+|citadel_[a-z_]+|istio_request_duration_milliseconds) (' + [
    'counter metrics should have "_total" suffix',
    'non-histogram and non-summary metrics should not have "_count" suffix',
    'use base unit "seconds" instead of "milliseconds"',
  ].join('|') + ')$');
  // prom-client's default process metrics name three gauges nodejs_active_*_total.
  const promClientNamed = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;
  for (const f of findings) t.ok(istioNamed.test(f) || promClientNamed.test(f), `finding comes from a name Istio or prom-client dictates: ${f}`);
  t.comment(`${findings.length} lint findings, all from names Istio or prom-client dictate`);
});
