/**
 * npm run bench:telemetry
 *
 * 1. Access-log entries ingested per second on one core (wire reader + labels + series),
 *    against the ceiling measured in the same run on the same bytes: a plain protobufjs
 *    decode of the StreamAccessLogsMessage (what a generic ALS server does before any
 *    work). Target: ingest >= 50% of the decode rate.
 * 2. /metrics render time (prom-client Registry.metrics()) at 10,000 series, with
 *    prom-client's own Counter at the same size as the reference. Target: < 100 ms.
 * 3. A scrape at the default bounds after 100,000 entries with random hosts and principals
 *    (~60 MB of exposition): the event-loop time of meshd's /metrics (cached per-series
 *    bytes, written in pieces) with nothing and with everything changed since the last
 *    scrape, against prom-client's Registry.metrics() on the same registry and against the
 *    ceiling measured in the same run: the same lines rendered by a trivial loop (what any
 *    renderer that builds the text on every scrape pays). Target: < 100 ms when unchanged.
 */
import { execFile } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Registry } from 'prom-client';
import { exposition } from '../src/telemetry/exposition.js';
import { startHttpServer } from '../src/server/http-server.js';
import { HandlerErrors } from '../src/common/handler-errors.js';
import { monitoringRoutes, type MonitoringDeps } from '../src/server/monitoring-routes.js';
import { silentLogger } from '../src/common/logger.js';
import { lookupType } from '../src/envoy/protos.js';
import { ACCESS_LOG_NAMES } from '../src/telemetry/access-log-config.js';
import { scanMessage } from '../src/telemetry/als-wire.js';
import { AccessLogIngester } from '../src/telemetry/ingester.js';
import type { WorkloadInfo, WorkloadResolver } from '../src/telemetry/workload-resolver.js';
import type { Identity } from '../src/auth/identity.js';
import { encodeStreamMessage, httpEntry, tcpEntry } from '../test/telemetry/helpers/envoy-als.js';

const MESSAGE = lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage');

// A mesh of 200 workloads in 10 namespaces, 40 services.
const workloads = new Map<string, WorkloadInfo>();
for (let i = 0; i < 200; i++) {
  const ns = `ns-${i % 10}`;
  workloads.set(`10.1.${i >> 8}.${i & 255}`, {
    workload: `app-${i % 40}-v${i % 3}`, namespace: ns, principal: `spiffe://cluster.local/ns/${ns}/sa/app-${i % 40}`,
    labels: { app: `app-${i % 40}`, version: `v${i % 3}` }, service: `app-${i % 40}.${ns}.svc.cluster.local`, cluster: 'Kubernetes',
  });
}
const ips = [...workloads.keys()];
const resolver: WorkloadResolver = { byAddress: (ip) => workloads.get(ip) };
const identity: Identity = { spiffeId: 'spiffe://cluster.local/ns/ns-2/sa/app-2', trustDomain: 'cluster.local', namespace: 'ns-2', serviceAccount: 'app-2', via: 'client-certificate' };
const node = { nodeId: 'sidecar~10.1.0.2~app-2-v2.ns-2~ns-2.svc.cluster.local', nodeCluster: 'app-2.ns-2', metadata: { NAMESPACE: 'ns-2', LABELS: { app: 'app-2', version: 'v2' } } };

/** Envoy-like batches: ~16 KB each (Envoy's default buffer_size_bytes), 80% HTTP, 20% TCP. */
function corpus(messages: number): { direction: 'inbound' | 'outbound'; bytes: Buffer; entries: number }[] {
  const out: { direction: 'inbound' | 'outbound'; bytes: Buffer; entries: number }[] = [];
  let n = 0;
  for (let m = 0; m < messages; m++) {
    const direction = m % 2 === 0 ? 'inbound' : 'outbound';
    const tcp = m % 5 === 4;
    const entries = [];
    for (let i = 0; i < (tcp ? 80 : 50); i++, n++) {
      const peer = ips[n % ips.length]!;
      const svc = n % 40;
      const common = direction === 'inbound'
        ? { downstreamRemote: `${peer}:${30000 + (n % 20000)}`, downstreamLocal: '10.1.0.2:8080', upstreamRemote: '10.1.0.2:8080', upstreamCluster: 'inbound|8080||', tls: n % 7 === 0 ? undefined : { peerSan: workloads.get(peer)!.principal!, localSan: identity.spiffeId } }
        : { downstreamRemote: '10.1.0.2:41000', upstreamRemote: `${peer}:8080`, upstreamCluster: `outbound|8080||app-${svc}.ns-${svc % 10}.svc.cluster.local` };
      entries.push(tcp
        ? tcpEntry({ ...common, receivedBytes: 1000 + n, sentBytes: 5000 + n, accessLogType: 'TcpConnectionEnd', streamId: `conn-${n}` })
        : httpEntry({
          ...common, authority: `app-${svc}.ns-${svc % 10}.svc.cluster.local:8080`, path: `/api/v1/items/${n}?page=2`,
          responseCode: [200, 200, 200, 200, 201, 404, 503][n % 7], durationMs: (n % 97) * 1.7, wireBytesReceived: 300 + (n % 50), wireBytesSent: 900 + (n % 400),
          flags: n % 7 === 6 ? ['upstream_connection_failure'] : [], contentType: n % 11 === 0 ? 'application/grpc' : undefined,
          grpcStatus: n % 11 === 0 ? { value: '0', in: 'trailers' } : undefined,
        }));
    }
    const bytes = encodeStreamMessage(tcp ? { tcp_logs: { log_entry: entries } } : { http_logs: { log_entry: entries } });
    out.push({ direction, bytes, entries: entries.length });
  }
  return out;
}

/**
 * Passes per second of each contender over the corpus, best of 6 rounds of ~300 ms.
 * Rounds interleave the contenders, so load from other processes on this shared
 * machine hits the ceiling and the measured paths alike.
 */
async function rates(contenders: Record<string, () => void | Promise<void>>): Promise<Record<string, number>> {
  const best: Record<string, number> = {};
  for (const fn of Object.values(contenders)) await fn(); // warm-up
  for (let round = 0; round < 6; round++) {
    for (const [name, fn] of Object.entries(contenders)) {
      let passes = 0;
      const start = performance.now();
      while (performance.now() - start < 300) {
        await fn();
        passes++;
      }
      best[name] = Math.max(best[name] ?? 0, passes / ((performance.now() - start) / 1000));
    }
  }
  return best;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

async function timeRender(registry: Registry): Promise<{ median: number; min: number; bytes: number; lines: number }> {
  let text = '';
  for (let i = 0; i < 3; i++) text = await registry.metrics(); // warm-up (JIT, prom-client's per-series label cache)
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const start = performance.now();
    text = await registry.metrics();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { median: times[7]!, min: times[0]!, bytes: text.length, lines: text.split('\n').filter((l) => l && !l.startsWith('#')).length };
}

// ---- 1. ingest rate vs decode ceiling
const messages = corpus(200);
const totalEntries = messages.reduce((a, m) => a + m.entries, 0);
const totalBytes = messages.reduce((a, m) => a + m.bytes.length, 0);

const registry = new Registry();
// Histogram bound raised so every entry of the corpus is recorded in full (no cheap drop path).
const ingester = new AccessLogIngester({ registry, logger: silentLogger(), resolver, defaultCluster: 'Kubernetes', maxHistogramSeriesPerMetric: 10_000 });
const streams = {
  inbound: ingester.openStream({ ...node, logName: ACCESS_LOG_NAMES.inbound }, identity),
  outbound: ingester.openStream({ ...node, logName: ACCESS_LOG_NAMES.outbound }, identity),
};
const passes = await rates({
  decode: () => {
    for (const m of messages) MESSAGE.decode(m.bytes);
  },
  ingest: () => {
    for (const m of messages) ingester.ingest(streams[m.direction], scanMessage(m.bytes));
  },
  // The service path: enqueue (what each gRPC message does), then the sliced worker.
  queued: async () => {
    for (const m of messages) ingester.enqueue(streams[m.direction], scanMessage(m.bytes), m.bytes.length);
    await ingester.idle();
  },
});
const queuedRate = passes.queued! * totalEntries;
const decodePasses = passes.decode!;
const ingestPasses = passes.ingest!;
const decodeRate = decodePasses * totalEntries;
const ingestRate = ingestPasses * totalEntries;
const json = await registry.getMetricsAsJSON();
const series = json.find((m) => m.name === 'meshd_telemetry_series');
const seriesDropped = json.find((m) => m.name === 'meshd_telemetry_series_dropped_total')?.values.reduce((a, v) => a + v.value, 0) ?? 0;

console.log(`machine: ${cpus().length} CPUs (${cpus()[0]?.model}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (other processes share these cores)`);
console.log(`corpus: ${messages.length} messages, ${fmt(totalEntries)} entries (80% HTTP / 20% TCP by message), ${(totalBytes / 1024).toFixed(0)} KiB, ${(totalBytes / totalEntries).toFixed(0)} B/entry`);
console.log(`ceiling  protobufjs decode of StreamAccessLogsMessage : ${fmt(decodeRate)} entries/s`);
console.log(`ingest   wire reader + labels + series (sync)         : ${fmt(ingestRate)} entries/s = ${(100 * ingestRate / decodeRate).toFixed(0)}% of decode (target >= 50%)`);
console.log(`ingest   through enqueue + sliced worker               : ${fmt(queuedRate)} entries/s = ${(100 * queuedRate / decodeRate).toFixed(0)}% of decode`);
console.log(`         label sets held: ${series?.values.map((v) => `${v.labels.metric} ${v.value}`).join(', ')}; observations dropped by the bound: ${seriesDropped}`);

// ---- 2. /metrics render at 10,000 series
const labelsFor = (i: number) => ({
  reporter: 'destination', source_workload: `app-${i % 97}-v1`, source_canonical_service: `app-${i % 97}`, source_canonical_revision: 'v1',
  source_workload_namespace: `ns-${i % 10}`, source_principal: `spiffe://cluster.local/ns/ns-${i % 10}/sa/app-${i % 97}`, source_app: `app-${i % 97}`,
  source_version: 'v1', source_cluster: 'Kubernetes', destination_workload: `svc-${i % 101}-v2`, destination_workload_namespace: `ns-${i % 7}`,
  destination_principal: `spiffe://cluster.local/ns/ns-${i % 7}/sa/svc-${i % 101}`, destination_app: `svc-${i % 101}`, destination_version: 'v2',
  destination_service: `svc-${i % 101}.ns-${i % 7}.svc.cluster.local`, destination_canonical_service: `svc-${i % 101}`, destination_canonical_revision: 'v2',
  destination_service_name: `svc-${i % 101}`, destination_service_namespace: `ns-${i % 7}`, destination_cluster: 'Kubernetes',
  request_protocol: 'http', response_code: String(200 + (i % 5)), grpc_response_status: '', response_flags: i % 13 === 0 ? 'UF' : '-',
  connection_security_policy: i % 3 === 0 ? 'none' : 'mutual_tls',
});

async function renderCase(name: string, counterSets: number, histogramSets: number): Promise<void> {
  const reg = new Registry();
  const ing = new AccessLogIngester({ registry: reg, logger: silentLogger(), maxSeriesPerMetric: Math.max(counterSets, 1), maxHistogramSeriesPerMetric: Math.max(histogramSets, 1) });
  for (let i = 0; i < Math.max(counterSets, histogramSets); i++) {
    const labels = labelsFor(i);
    const key = `k${i}`;
    if (i < histogramSets) ing.metrics.recordRequest(key, (l) => l, labels, i % 300, 400, 1200);
    else ing.metrics.recordRefusedRequest(key, (l) => l, labels);
  }
  const r = await timeRender(reg);
  console.log(`render   ${name.padEnd(60)}: median ${r.median.toFixed(1)} ms, min ${r.min.toFixed(1)} ms (15 runs), ${fmt(r.lines)} samples, ${(r.bytes / 1048576).toFixed(1)} MiB`);
}

async function promClientReference(combos: number): Promise<void> {
  const reg = new Registry();
  const c = new Counter({ name: 'istio_requests_total', help: 'reference', labelNames: Object.keys(labelsFor(0)), registers: [reg] });
  for (let i = 0; i < combos; i++) c.inc(labelsFor(i));
  const r = await timeRender(reg);
  console.log(`${'reference: prom-client\'s own Counter, the same 10,000 label sets'.padEnd(69)}: median ${r.median.toFixed(1)} ms, min ${r.min.toFixed(1)} ms (15 runs), ${fmt(r.lines)} samples`);
}

await renderCase('10,000 series: istio_requests_total, 10,000 label sets', 10_000, 0);
await promClientReference(10_000);
await renderCase('~10,000 series: 150 label sets x 4 HTTP families', 150, 150);
await renderCase('full default bounds: 10,000 counter + 3x1,000 histogram sets', 10_000, 1_000);
ingester.stop();

// ---- 3. a scrape at the default bounds after a flood of random hosts and principals
function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timed(runs: number, fn: () => unknown): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

function curl(url: string): Promise<{ seconds: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{time_total} %{size_download}', url], (err, out) => {
      if (err) return reject(err);
      const [seconds, bytes] = out.trim().split(' ').map(Number);
      resolve({ seconds: seconds!, bytes: bytes! });
    });
  });
}

{
  const reg = new Registry();
  const ing = new AccessLogIngester({ registry: reg, logger: silentLogger(), resolver, defaultCluster: 'Kubernetes' });
  const stream = ing.openStream({ ...node, logName: ACCESS_LOG_NAMES.inbound }, identity);
  const rnd = (): string => Math.random().toString(36).slice(2, 10);
  const flood: Buffer[] = [];
  for (let m = 0; m < 1000; m++) {
    const entries = [];
    for (let i = 0; i < 100; i++) {
      entries.push(httpEntry({
        downstreamRemote: `10.${m % 250}.${i}.1:40000`, upstreamCluster: 'inbound|8080||', authority: `${rnd()}.example.com`,
        tls: { peerSan: `spiffe://cluster.local/ns/${rnd()}/sa/${rnd()}`, localSan: identity.spiffeId }, responseCode: 200, durationMs: 3,
      }));
    }
    flood.push(encodeStreamMessage({ http_logs: { log_entry: entries } }));
  }
  for (const bytes of flood) ing.ingest(stream, scanMessage(bytes));
  const text = await reg.metrics();
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const same = (await exposition(reg)).map(String).join('') === text;
  console.log(`\nscrape after 100,000 entries with random hosts and principals: ${fmt(lines.length)} samples, ${(text.length / 1048576).toFixed(1)} MiB; meshd's /metrics text identical to prom-client's: ${same}`);

  // The ceiling: the same lines from a trivial loop (label text already made, value appended, joined).
  const prefixes = lines.map((l) => l.slice(0, l.lastIndexOf(' ') + 1));
  const ceiling = await timed(5, () => {
    const parts: string[] = new Array(prefixes.length);
    for (let i = 0; i < prefixes.length; i++) parts[i] = prefixes[i]! + String(i);
    return Buffer.from(parts.join('\n'));
  });
  const promClient = await timed(5, async () => Buffer.from(await reg.metrics()));
  const unchanged = await timed(15, () => exposition(reg));
  // Every held series updated (the flood again): what a scrape costs when the whole mesh moved since the last one.
  const changedTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    for (const bytes of flood) ing.ingest(stream, scanMessage(bytes));
    const start = performance.now();
    await exposition(reg);
    changedTimes.push(performance.now() - start);
  }
  const changed = median(changedTimes);
  console.log(`ceiling  the same lines rendered by a trivial loop, as bytes           : median ${ceiling.toFixed(1)} ms`);
  console.log(`before   prom-client Registry.metrics(), as bytes                      : median ${promClient.toFixed(1)} ms`);
  console.log(`meshd    /metrics pieces, every series changed since the last scrape   : median ${changed.toFixed(1)} ms`);
  console.log(`meshd    /metrics pieces, nothing changed since the last scrape        : median ${unchanged.toFixed(1)} ms (target < 100 ms)`);

  // End to end: curl (another process) scrapes the monitoring route; the event loop's longest stall meanwhile.
  const http = await startHttpServer('127.0.0.1', 0, monitoringRoutes({ registry: reg, ready: () => true } as unknown as MonitoringDeps), { name: 'monitoring', logger: silentLogger(), errors: new HandlerErrors({ logger: silentLogger() }) });
  const url = `http://127.0.0.1:${http.port}/metrics`;
  await curl(url);
  const stalls: number[] = [];
  const totals: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < 7; i++) {
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const before = process.cpuUsage();
    const r = await curl(url);
    const used = process.cpuUsage(before);
    delay.disable();
    stalls.push(delay.max / 1e6);
    totals.push(r.seconds * 1000);
    cpu.push((used.user + used.system) / 1000);
  }
  console.log(`http     curl of /metrics (nothing changed): median ${median(totals).toFixed(0)} ms to receive ${(text.length / 1048576).toFixed(1)} MiB; meshd's CPU per scrape (JS + the kernel's copy into the socket): median ${median(cpu).toFixed(0)} ms; longest event-loop stall meanwhile: median ${median(stalls).toFixed(0)} ms (wall time: on cores shared with other processes it includes time this process was not scheduled)`);
  await http.close();
}
