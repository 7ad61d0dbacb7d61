/**
 * istio_* series expire after going idle, so a burst of random label combinations cannot
 * hold the series bound for good; /metrics is served from per-series cached bytes and reads
 * exactly as prom-client would write it.
 */
import t, { type Test } from 'tap';
import { Counter, Registry } from 'prom-client';
import { ManualClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import type { Identity } from '../../src/auth/identity.js';
import { ACCESS_LOG_NAMES } from '../../src/telemetry/access-log-config.js';
import { scanMessage } from '../../src/telemetry/als-wire.js';
import { exposition } from '../../src/telemetry/exposition.js';
import { AccessLogIngester, type AccessLogIngesterOptions, type AccessLogStream } from '../../src/telemetry/ingester.js';
import { TELEMETRY_SERIES_IDLE_MS } from '../../src/common/defaults.js';
import { startHttpServer } from '../../src/server/http-server.js';
import { HandlerErrors } from '../../src/common/handler-errors.js';
import { monitoringRoutes, type MonitoringDeps } from '../../src/server/monitoring-routes.js';
import { encodeStreamMessage, httpEntry } from './helpers/envoy-als.js';
import { parseExposition, select, total } from './helpers/exposition.js';

const identity: Identity = { spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web', via: 'client-certificate' };
const IDLE = 60_000;

interface Setup {
  clock: ManualClock;
  registry: Registry;
  ingester: AccessLogIngester;
  stream: AccessLogStream;
  /** One inbound request from `principal` for `host`. */
  request(principal: string, host: string, code?: number): void;
  scrape(): Promise<string>;
}

async function setup(t: Test, options: Partial<AccessLogIngesterOptions> = {}): Promise<Setup> {
  const clock = new ManualClock();
  const registry = new Registry();
  const ingester = new AccessLogIngester({ registry, logger: silentLogger(), clock, seriesIdleMs: IDLE, maxSeriesPerMetric: 5, maxHistogramSeriesPerMetric: 5, ...options });
  const stream = ingester.openStream({ nodeId: 'sidecar~10.0.0.2~web-1.shop~shop.svc.cluster.local', nodeCluster: 'web.shop', logName: ACCESS_LOG_NAMES.inbound, metadata: {} } as never, identity);
  // /metrics as meshd serves it: the monitoring route on the real HTTP server.
  const http = await startHttpServer('127.0.0.1', 0, monitoringRoutes({ registry, ready: () => true } as unknown as MonitoringDeps), { name: 'monitoring', logger: silentLogger(), errors: new HandlerErrors({ logger: silentLogger() }) });
  t.teardown(() => http.close());
  return {
    clock, registry, ingester, stream,
    request(principal, host, code = 200) {
      const entry = httpEntry({ downstreamRemote: '10.9.9.9:40000', upstreamCluster: 'inbound|8080||', authority: host, tls: { peerSan: principal, localSan: identity.spiffeId }, responseCode: code, durationMs: 3 });
      ingester.ingest(stream, scanMessage(encodeStreamMessage({ http_logs: { log_entry: [entry] } })));
    },
    scrape: async () => (await fetch(`http://127.0.0.1:${http.port}/metrics`)).text(),
  };
}

const random = (i: number): string => `spiffe://cluster.local/ns/scan-${i}/sa/x${i}`;

t.test(`the default idle time is ${TELEMETRY_SERIES_IDLE_MS / 60_000} minutes`, async (t) => {
  t.equal(TELEMETRY_SERIES_IDLE_MS, 600_000);
});

t.test('series idle past the idle time leave /metrics; a legitimate series is recorded afterwards', async (t) => {
  const s = await setup(t);
  for (let i = 0; i < 5; i++) s.request(random(i), `h${i}.example.com`);
  s.request('spiffe://cluster.local/ns/shop/sa/client', 'web.shop.svc.cluster.local');
  let samples = parseExposition(await s.scrape());
  t.equal(select(samples, 'istio_requests_total').length, 5, 'the bound is full of one-off series');
  t.equal(total(samples, 'meshd_telemetry_series_dropped_total', { metric: 'istio_requests_total' }), 1, 'the legitimate request was dropped');

  s.clock.advance(IDLE - 1);
  s.request('spiffe://cluster.local/ns/shop/sa/client', 'web.shop.svc.cluster.local');
  t.equal(total(parseExposition(await s.scrape()), 'meshd_telemetry_series_dropped_total', { metric: 'istio_requests_total' }), 2, 'not yet: still within the idle time');

  s.clock.advance(1);
  s.request('spiffe://cluster.local/ns/shop/sa/client', 'web.shop.svc.cluster.local');
  samples = parseExposition(await s.scrape());
  t.same(select(samples, 'istio_requests_total').map((x) => [x.labels.source_principal, x.value]), [['spiffe://cluster.local/ns/shop/sa/client', 1]], 'only the new series is left');
  t.equal(select(samples, 'istio_request_duration_milliseconds_count').length, 1, 'the histograms too');
  t.equal(total(samples, 'meshd_telemetry_series_expired_total', { metric: 'istio_requests_total' }), 5);
  t.equal(total(samples, 'meshd_telemetry_series_expired_total', { metric: 'istio_request_bytes' }), 5);
  t.equal(total(samples, 'meshd_telemetry_series', { metric: 'istio_requests_total' }), 1);
});

t.test('a scrape alone expires idle series (no traffic needed)', async (t) => {
  const s = await setup(t);
  s.request(random(1), 'a.example.com');
  s.clock.advance(IDLE);
  const samples = parseExposition(await s.scrape());
  t.same(select(samples, 'istio_requests_total'), []);
  t.equal(total(samples, 'meshd_telemetry_series', { metric: 'istio_requests_total' }), 0);
});

t.test('active series keep counting across many idle times; only idle ones go', async (t) => {
  const s = await setup(t);
  const active = 'spiffe://cluster.local/ns/shop/sa/client';
  s.request(random(1), 'once.example.com');
  for (let minute = 0; minute < 20; minute++) {
    s.request(active, 'web.shop.svc.cluster.local');
    s.request(active, 'web.shop.svc.cluster.local', 503);
    s.clock.advance(IDLE / 2);
    if (minute % 3 === 0) await s.scrape();
  }
  const samples = parseExposition(await s.scrape());
  t.same(select(samples, 'istio_requests_total').map((x) => [x.labels.source_principal, x.labels.response_code, x.value]), [
    [active, '200', 20],
    [active, '503', 20],
  ]);
  t.equal(total(samples, 'istio_request_duration_milliseconds_count', { response_code: '200' }), 20);
  t.equal(total(samples, 'istio_request_duration_milliseconds_bucket', { response_code: '503', le: '+Inf' }), 20);
  t.equal(total(samples, 'meshd_telemetry_series_expired_total', { metric: 'istio_requests_total' }), 1);
});

t.test('while every series is active the bound holds and the drop counter counts', async (t) => {
  const s = await setup(t);
  for (let i = 0; i < 5; i++) s.request(random(i), 'a.example.com');
  for (let round = 0; round < 4; round++) {
    s.clock.advance(IDLE / 2);
    for (let i = 0; i < 5; i++) s.request(random(i), 'a.example.com');
    s.request(random(100 + round), 'new.example.com');
  }
  const samples = parseExposition(await s.scrape());
  t.equal(select(samples, 'istio_requests_total').length, 5);
  t.equal(total(samples, 'meshd_telemetry_series_dropped_total', { metric: 'istio_requests_total' }), 4);
  t.equal(total(samples, 'meshd_telemetry_series_expired_total'), 0);
  t.equal(total(samples, 'istio_requests_total'), 25, 'every request of the five kept series is counted');
});

t.test('seriesIdleMs 0 keeps series forever', async (t) => {
  const s = await setup(t, { seriesIdleMs: 0 });
  s.request(random(1), 'a.example.com');
  s.clock.advance(365 * 24 * 3_600_000);
  t.equal(select(parseExposition(await s.scrape()), 'istio_requests_total').length, 1);
});

t.test('/metrics is byte for byte what prom-client writes, before and after updates, with labels that need escaping', async (t) => {
  const s = await setup(t, { maxSeriesPerMetric: 100, maxHistogramSeriesPerMetric: 100 });
  new Counter({ name: 'other_total', help: 'another metric, help with a \\ backslash\nand a newline', labelNames: ['k'], registers: [s.registry] }).inc({ k: 'v"q' });
  s.request('spiffe://cluster.local/ns/shop/sa/a"quoted', 'back\\slash.example.com');
  s.request(random(2), 'b.example.com', 404);
  const first = await s.scrape();
  t.equal(first, await s.registry.metrics(), 'after the first requests');
  s.request(random(2), 'b.example.com', 404);
  s.request(random(3), 'c.example.com');
  const second = await s.scrape();
  t.equal(second, await s.registry.metrics(), 'after an update to a rendered series and a new one');
  t.equal(total(parseExposition(second), 'istio_requests_total', { response_code: '404' }), 2, 'the update shows');
  t.equal((await exposition(s.registry)).filter((c) => Buffer.isBuffer(c)).length, 3 + 3 * 3, 'one cached chunk per series per family');
});
