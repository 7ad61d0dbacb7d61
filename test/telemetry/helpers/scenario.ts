import { ACCESS_LOG_NAMES } from '../../../src/telemetry/access-log-config.js';
import type { AlsFixture } from './als-fixture.js';
import { spiffe } from './als-fixture.js';
import { httpEntry, tcpEntry } from './envoy-als.js';

/**
 * A morning in a small mesh, as the sidecars would log it:
 * - reviews (STRICT on 9080 for some, PERMISSIVE traffic still plaintext from a legacy
 *   client) logs inbound requests: mTLS from productpage, plaintext from legacy, a
 *   503 UF,URX, a gRPC call that ended UNAVAILABLE;
 * - reviews' inbound listener logs two plaintext connections refused with NR;
 * - productpage logs its outbound calls to reviews (reporter=source);
 * - mysqldb logs TCP connections from reviews, one with on-connect and periodic entries.
 */

export const EXPECTED_REQUESTS_BY_FLAGS: Record<string, number> = { '-': 10, 'UF,URX': 1, NR: 2 };

const reviewsSan = spiffe('default', 'bookinfo-reviews');
const productpageSan = spiffe('default', 'bookinfo-productpage');
const mysqlSan = spiffe('db', 'mysql');

export async function sendScenario(fx: AlsFixture): Promise<void> {
  const authority = 'reviews.default.svc.cluster.local:9080';
  const inbound = { downstreamLocal: '10.0.0.2:9080', upstreamRemote: '10.0.0.2:9080', upstreamCluster: 'inbound|9080||', authority };

  const reviews = await fx.stream({ ns: 'default', sa: 'bookinfo-reviews', ip: '10.0.0.2', workload: 'reviews-v2', logName: ACCESS_LOG_NAMES.inbound, metadata: { LABELS: { app: 'reviews', version: 'v2' } } });
  const mtlsFromProductpage = { ...inbound, downstreamRemote: '10.0.0.1:43210', tls: { peerSan: productpageSan, localSan: reviewsSan } };
  await reviews.sendHttp([1, 2, 3].map(() => httpEntry({ ...mtlsFromProductpage, responseCode: 200, durationMs: 12.5, wireBytesReceived: 240, wireBytesSent: 800 })));
  await reviews.sendHttp([1, 2].map(() => httpEntry({ ...inbound, downstreamRemote: '10.0.0.9:50000', responseCode: 200, durationMs: 3 })));
  await reviews.sendHttp([httpEntry({ ...mtlsFromProductpage, responseCode: 503, durationMs: 30.5, flags: ['upstream_retry_limit_exceeded', 'upstream_connection_failure'] })]);
  await reviews.sendHttp([httpEntry({ ...mtlsFromProductpage, responseCode: 200, durationMs: 7, contentType: 'application/grpc', grpcStatus: { value: '14', in: 'trailers' } })]);

  const listener = await fx.stream({ ns: 'default', sa: 'bookinfo-reviews', ip: '10.0.0.2', workload: 'reviews-v2', logName: ACCESS_LOG_NAMES.inboundListener, metadata: { LABELS: { app: 'reviews', version: 'v2' } } });
  await listener.sendTcp([1, 2].map((i) => tcpEntry({ downstreamRemote: `10.0.0.9:5100${i}`, downstreamLocal: '10.0.0.2:9080', flags: ['no_route_found'] })));

  const productpage = await fx.stream({ ns: 'default', sa: 'bookinfo-productpage', ip: '10.0.0.1', workload: 'productpage-v1', logName: ACCESS_LOG_NAMES.outbound, metadata: { LABELS: { app: 'productpage', version: 'v1' } } });
  await productpage.sendHttp([1, 2, 3, 4].map(() => httpEntry({
    downstreamRemote: '127.0.0.6:40000', downstreamLocal: '10.96.0.20:9080', upstreamRemote: '10.0.0.2:9080',
    upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local', authority, responseCode: 200, durationMs: 15,
  })));

  const mysql = await fx.stream({ ns: 'db', sa: 'mysql', ip: '10.0.0.3', workload: 'mysqldb-v1', logName: ACCESS_LOG_NAMES.inbound, metadata: { LABELS: { app: 'mysqldb', version: 'v1' } } });
  const tcpBase = { downstreamRemote: '10.0.0.2:39000', downstreamLocal: '10.0.0.3:3306', upstreamCluster: 'inbound|3306||mysqldb.db.svc.cluster.local', tls: { peerSan: reviewsSan, localSan: mysqlSan } };
  await mysql.sendTcp([tcpEntry({ ...tcpBase, streamId: 'c1', accessLogType: 'TcpConnectionEnd', receivedBytes: 1000, sentBytes: 5000 })]);
  await mysql.sendTcp([
    tcpEntry({ ...tcpBase, streamId: 'c2', accessLogType: 'TcpUpstreamConnected' }),
    tcpEntry({ ...tcpBase, streamId: 'c2', accessLogType: 'TcpPeriodic', receivedBytes: 100, sentBytes: 200 }),
  ]);
  await mysql.sendTcp([tcpEntry({ ...tcpBase, streamId: 'c2', accessLogType: 'TcpConnectionEnd', receivedBytes: 150, sentBytes: 500 })]);

  // Envoy never half-closes; the test waits for the ingester to drain instead.
  await waitUntil(async () => {
    await fx.ingester.idle();
    const m = (await fx.registry.getSingleMetricAsString('meshd_accesslog_entries_total'));
    return /type="http"} 11\b/.test(m) && /type="tcp"} 6\b/.test(m);
  });
  for (const s of [reviews, listener, productpage, mysql]) s.cancel();
}

export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
