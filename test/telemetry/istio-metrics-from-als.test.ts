import t from 'tap';
import { startAlsFixture, spiffe } from './helpers/als-fixture.js';
import { parseExposition, select, total, type Sample } from './helpers/exposition.js';
import { EXPECTED_REQUESTS_BY_FLAGS, sendScenario } from './helpers/scenario.js';
import { HTTP_LABEL_NAMES, TCP_LABEL_NAMES } from '../../src/telemetry/istio-metrics.js';

/**
 * Envoy-shaped access-log streams over real gRPC into meshd's ALS service, read back
 * from the prom-client registry's /metrics text.
 */

const fx = await startAlsFixture();
t.teardown(() => fx.close());
await sendScenario(fx);
const samples: Sample[] = parseExposition(await fx.registry.metrics());

const one = (name: string, match: Record<string, string>): Sample => {
  const found = select(samples, name, match);
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(match)}`);
  return found[0]!;
};

t.test('requests by response_flags: "-" for none, Envoy codes joined in Envoy order, NR from refused plaintext', async (t) => {
  const byFlags: Record<string, number> = {};
  for (const s of select(samples, 'istio_requests_total')) byFlags[s.labels.response_flags!] = (byFlags[s.labels.response_flags!] ?? 0) + s.value;
  t.strictSame(byFlags, EXPECTED_REQUESTS_BY_FLAGS);
});

t.test('every istio_* series carries exactly Istio\'s label set, in Istio\'s order', async (t) => {
  for (const s of select(samples, 'istio_requests_total')) t.strictSame(Object.keys(s.labels), [...HTTP_LABEL_NAMES]);
  for (const s of select(samples, 'istio_tcp_connections_opened_total')) t.strictSame(Object.keys(s.labels), TCP_LABEL_NAMES);
  const buckets = select(samples, 'istio_request_duration_milliseconds_bucket');
  t.ok(buckets.length > 0);
  for (const s of buckets) t.strictSame(Object.keys(s.labels).filter((k) => k !== 'le'), [...HTTP_LABEL_NAMES]);
});

t.test('mTLS inbound request: reporter=destination, mutual_tls, peer from the SAN and the registry', async (t) => {
  const s = one('istio_requests_total', { reporter: 'destination', source_workload: 'productpage-v1', response_code: '200', request_protocol: 'http' });
  t.equal(s.value, 3);
  t.strictSame(s.labels, {
    reporter: 'destination',
    source_workload: 'productpage-v1',
    source_canonical_service: 'productpage',
    source_canonical_revision: 'v1',
    source_workload_namespace: 'default',
    source_principal: spiffe('default', 'bookinfo-productpage'),
    source_app: 'productpage',
    source_version: 'v1',
    source_cluster: 'Kubernetes',
    destination_workload: 'reviews-v2',
    destination_workload_namespace: 'default',
    destination_principal: spiffe('default', 'bookinfo-reviews'),
    destination_app: 'reviews',
    destination_version: 'v2',
    destination_service: 'reviews.default.svc.cluster.local',
    destination_canonical_service: 'reviews',
    destination_canonical_revision: 'v2',
    destination_service_name: 'reviews',
    destination_service_namespace: 'default',
    destination_cluster: 'Kubernetes',
    request_protocol: 'http',
    response_code: '200',
    grpc_response_status: '',
    response_flags: '-',
    connection_security_policy: 'mutual_tls',
  });
});

t.test('plaintext inbound request under PERMISSIVE: none, principal unknown, workload from the registry by IP', async (t) => {
  const s = one('istio_requests_total', { reporter: 'destination', source_workload: 'legacy-client', request_protocol: 'http' });
  t.equal(s.value, 2);
  t.equal(s.labels.connection_security_policy, 'none');
  t.equal(s.labels.source_principal, 'unknown');
  t.equal(s.labels.destination_principal, 'unknown', 'no local certificate on a plaintext connection');
  t.equal(s.labels.source_workload_namespace, 'legacy');
  t.equal(s.labels.source_version, 'unknown');
  t.equal(s.labels.source_canonical_revision, 'latest');
});

t.test('a plaintext connection refused under STRICT counts as NR, tcp, code 0, policy none', async (t) => {
  const s = one('istio_requests_total', { response_flags: 'NR' });
  t.equal(s.value, 2);
  t.match(s.labels, {
    reporter: 'destination', request_protocol: 'tcp', response_code: '0', grpc_response_status: '',
    connection_security_policy: 'none', source_workload: 'legacy-client', source_workload_namespace: 'legacy',
    destination_workload: 'reviews-v2', destination_workload_namespace: 'default',
  });
  t.equal(total(samples, 'istio_tcp_connections_opened_total', { response_flags: 'NR' }), 2);
  t.equal(total(samples, 'istio_tcp_connections_closed_total', { response_flags: 'NR' }), 2);
  t.equal(select(samples, 'istio_request_duration_milliseconds_count', { response_flags: 'NR' }).length, 0, 'no timing for a request that never was');
});

t.test('a 503 with UF and URX, and a gRPC call with its grpc-status trailer', async (t) => {
  t.equal(one('istio_requests_total', { response_flags: 'UF,URX' }).labels.response_code, '503');
  const grpc = one('istio_requests_total', { request_protocol: 'grpc' });
  t.equal(grpc.labels.grpc_response_status, '14');
  t.equal(grpc.labels.response_code, '200');
  t.equal(grpc.value, 1);
});

t.test('client-side report: reporter=source, policy unknown, principals from identity and registry', async (t) => {
  const s = one('istio_requests_total', { reporter: 'source' });
  t.equal(s.value, 4);
  t.match(s.labels, {
    source_workload: 'productpage-v1', source_principal: spiffe('default', 'bookinfo-productpage'), source_app: 'productpage',
    destination_workload: 'reviews-v2', destination_principal: spiffe('default', 'bookinfo-reviews'),
    destination_service: 'reviews.default.svc.cluster.local', destination_service_name: 'reviews',
    connection_security_policy: 'unknown', response_flags: '-',
  });
});

t.test('duration histogram uses Envoy\'s buckets; sizes are wire bytes when logged', async (t) => {
  const match = { reporter: 'destination', source_workload: 'productpage-v1', response_code: '200', request_protocol: 'http' };
  const les = select(samples, 'istio_request_duration_milliseconds_bucket', match).map((s) => s.labels.le);
  t.strictSame(les, ['0.5', '1', '5', '10', '25', '50', '100', '250', '500', '1000', '2500', '5000', '10000', '30000', '60000', '300000', '600000', '1800000', '3600000', '+Inf']);
  t.equal(one('istio_request_duration_milliseconds_bucket', { ...match, le: '10' }).value, 0);
  t.equal(one('istio_request_duration_milliseconds_bucket', { ...match, le: '25' }).value, 3, '12.5 ms lands in le=25');
  t.equal(one('istio_request_duration_milliseconds_sum', match).value, 37.5);
  t.equal(one('istio_request_duration_milliseconds_count', match).value, 3);
  t.equal(one('istio_request_bytes_sum', match).value, 720);
  t.equal(one('istio_response_bytes_sum', match).value, 2400);
  // Without wire bytes: header + body bytes (180 + 0 and 120 + 295 in the fixture entries).
  const plain = { reporter: 'destination', source_workload: 'legacy-client', request_protocol: 'http' };
  t.equal(one('istio_request_bytes_sum', plain).value, 360);
  t.equal(one('istio_response_bytes_sum', plain).value, 830);
});

t.test('TCP: opened/closed once per connection, bytes once even with periodic entries', async (t) => {
  const match = { reporter: 'destination', destination_workload: 'mysqldb-v1', response_flags: '-' };
  t.equal(one('istio_tcp_connections_opened_total', match).value, 2);
  t.equal(one('istio_tcp_connections_closed_total', match).value, 2);
  t.equal(one('istio_tcp_received_bytes_total', match).value, 1150);
  t.equal(one('istio_tcp_sent_bytes_total', match).value, 5500);
  t.match(one('istio_tcp_sent_bytes_total', match).labels, {
    connection_security_policy: 'mutual_tls', source_workload: 'reviews-v2', source_principal: spiffe('default', 'bookinfo-reviews'),
    destination_service: 'mysqldb.db.svc.cluster.local', destination_service_namespace: 'db', request_protocol: 'tcp',
  });
});

t.test('the receiver counts what it read and dropped nothing', async (t) => {
  t.equal(total(samples, 'meshd_accesslog_entries_total', { type: 'http' }), 11);
  t.equal(total(samples, 'meshd_accesslog_entries_total', { type: 'tcp' }), 6);
  t.equal(total(samples, 'meshd_accesslog_entries_dropped_total'), 0);
  t.equal(total(samples, 'meshd_telemetry_series_dropped_total'), 0);
  t.equal(total(samples, 'meshd_accesslog_streams_rejected_total'), 0);
});
