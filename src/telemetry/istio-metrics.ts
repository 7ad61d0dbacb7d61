import { Counter, Gauge, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../common/clock.js';
import { TELEMETRY_SERIES_IDLE_MS } from '../common/defaults.js';
import { CounterFamily, HistogramFamily, type Labels } from './series-family.js';

/**
 * Istio's standard metrics (https://istio.io/latest/docs/reference/config/metrics/), built
 * from access logs. Names, label names and label order are Istio's, so existing
 * dashboards (Kiali, Istio's Grafana boards) and alerts work unchanged.
 */

/** HTTP/gRPC label set in Istio's emission order (istio_stats.cc, istio/proxy testdata). */
export const HTTP_LABEL_NAMES = [
  'reporter',
  'source_workload', 'source_canonical_service', 'source_canonical_revision', 'source_workload_namespace',
  'source_principal', 'source_app', 'source_version', 'source_cluster',
  'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app',
  'destination_version', 'destination_service', 'destination_canonical_service',
  'destination_canonical_revision', 'destination_service_name', 'destination_service_namespace',
  'destination_cluster',
  'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy',
] as const;

/** TCP: the same without response_code and grpc_response_status. */
export const TCP_LABEL_NAMES = HTTP_LABEL_NAMES.filter((n) => n !== 'response_code' && n !== 'grpc_response_status');

/**
 * Envoy's default histogram buckets (source/common/stats/histogram_impl.cc). Istio's
 * sidecars use them for all three istiocustom histograms, bytes included, unless the
 * sidecar.istio.io/statsHistogramBuckets annotation overrides them; the exponential
 * 1..10^8 byte buckets some pages quote are Mixer's, gone since Istio 1.5.
 */
export const ENVOY_DEFAULT_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
] as const;

export const DEFAULT_MAX_SERIES_PER_METRIC = 10_000;
/**
 * Histograms get a lower default: one label set is 22 samples (19 buckets, +Inf, _sum,
 * _count) of ~800 bytes each with Istio's 25 labels, and meshd serves the whole mesh from
 * one endpoint. 10,000 label sets in the three histograms would be a 530 MB scrape.
 */
export const DEFAULT_MAX_HISTOGRAM_SERIES_PER_METRIC = 1_000;


export interface IstioMetricsOptions {
  registry: Registry;
  /** Label combinations kept per counter family; beyond it entries are counted and not recorded. */
  maxSeriesPerMetric?: number | undefined;
  /** The same for each histogram family (default 1,000; see DEFAULT_MAX_HISTOGRAM_SERIES_PER_METRIC). */
  maxHistogramSeriesPerMetric?: number | undefined;
  durationBuckets?: readonly number[] | undefined;
  bytesBuckets?: readonly number[] | undefined;
  /** A series not updated for this long is dropped (default 10 minutes); 0 keeps series forever. */
  seriesIdleMs?: number | undefined;
  clock?: Clock | undefined;
}

export class IstioMetrics {
  readonly requestsTotal: CounterFamily;
  readonly requestDuration: HistogramFamily;
  readonly requestBytes: HistogramFamily;
  readonly responseBytes: HistogramFamily;
  readonly tcpOpened: CounterFamily;
  readonly tcpClosed: CounterFamily;
  readonly tcpSentBytes: CounterFamily;
  readonly tcpReceivedBytes: CounterFamily;
  /** meshd_telemetry_series_dropped_total{metric}: entries not recorded because a family was full. */
  readonly seriesDropped: Counter<'metric'>;
  /** meshd_telemetry_series_expired_total{metric}: series dropped after seriesIdleMs without an update. */
  readonly seriesExpired: Counter<'metric'>;
  private readonly clock: Clock;

  constructor(options: IstioMetricsOptions) {
    const { registry } = options;
    this.clock = options.clock ?? systemClock;
    const idleMs = options.seriesIdleMs ?? TELEMETRY_SERIES_IDLE_MS;
    if (!Number.isFinite(idleMs) || idleMs < 0) throw new RangeError(`seriesIdleMs must be 0 or more, got ${idleMs}`);
    const maxSeries = options.maxSeriesPerMetric ?? DEFAULT_MAX_SERIES_PER_METRIC;
    const maxHistogramSeries = options.maxHistogramSeriesPerMetric ?? Math.min(maxSeries, DEFAULT_MAX_HISTOGRAM_SERIES_PER_METRIC);
    for (const [name, v] of [['maxSeriesPerMetric', maxSeries], ['maxHistogramSeriesPerMetric', maxHistogramSeries]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    this.seriesDropped = new Counter({
      name: 'meshd_telemetry_series_dropped_total',
      help: 'Access-log observations not recorded because the metric family reached its label-combination bound.',
      labelNames: ['metric'],
      registers: [registry],
    });
    this.seriesExpired = new Counter({
      name: 'meshd_telemetry_series_expired_total',
      help: 'istio_* series dropped after going without an update for the series idle time (meshd serve --telemetry-series-idle).',
      labelNames: ['metric'],
      registers: [registry],
    });
    const onDrop = (metric: string): void => this.seriesDropped.inc({ metric });
    const onExpire = (metric: string, count: number): void => this.seriesExpired.inc({ metric }, count);
    const http = (name: string, help: string) => ({ name, help, labelNames: HTTP_LABEL_NAMES, maxSeries, onDrop, idleMs, onExpire, clock: this.clock });
    const httpHistogram = (name: string, help: string, buckets: readonly number[]) => ({ ...http(name, help), maxSeries: maxHistogramSeries, buckets });
    const tcp = (name: string, help: string) => ({ name, help, labelNames: TCP_LABEL_NAMES, maxSeries, onDrop, idleMs, onExpire, clock: this.clock });
    const durationBuckets = options.durationBuckets ?? ENVOY_DEFAULT_BUCKETS;
    const bytesBuckets = options.bytesBuckets ?? ENVOY_DEFAULT_BUCKETS;

    this.requestsTotal = new CounterFamily(http('istio_requests_total',
      'Requests handled by a sidecar, from its access logs (Istio standard metric).')).register(registry);
    this.requestDuration = new HistogramFamily(httpHistogram('istio_request_duration_milliseconds',
      'Request duration in milliseconds, from the sidecar access logs (Istio standard metric).', durationBuckets)).register(registry);
    this.requestBytes = new HistogramFamily(httpHistogram('istio_request_bytes',
      'Request size in bytes (wire bytes where Envoy logs them), from the sidecar access logs (Istio standard metric).', bytesBuckets)).register(registry);
    this.responseBytes = new HistogramFamily(httpHistogram('istio_response_bytes',
      'Response size in bytes (wire bytes where Envoy logs them), from the sidecar access logs (Istio standard metric).', bytesBuckets)).register(registry);
    this.tcpOpened = new CounterFamily(tcp('istio_tcp_connections_opened_total',
      'TCP connections opened, from the sidecar access logs (Istio standard metric).')).register(registry);
    this.tcpClosed = new CounterFamily(tcp('istio_tcp_connections_closed_total',
      'TCP connections closed, from the sidecar access logs (Istio standard metric).')).register(registry);
    this.tcpSentBytes = new CounterFamily(tcp('istio_tcp_sent_bytes_total',
      'Bytes sent to the downstream on TCP connections, from the sidecar access logs (Istio standard metric).')).register(registry);
    this.tcpReceivedBytes = new CounterFamily(tcp('istio_tcp_received_bytes_total',
      'Bytes received from the downstream on TCP connections, from the sidecar access logs (Istio standard metric).')).register(registry);

    const families = [this.requestsTotal, this.requestDuration, this.requestBytes, this.responseBytes,
      this.tcpOpened, this.tcpClosed, this.tcpSentBytes, this.tcpReceivedBytes];
    const clock = this.clock;
    new Gauge({
      name: 'meshd_telemetry_series',
      help: 'Label combinations currently held per istio_* metric family.',
      labelNames: ['metric'],
      registers: [registry],
      collect() {
        const now = clock.now();
        for (const f of families) {
          f.expire(now);
          this.set({ metric: f.name }, f.size);
        }
      },
    });
  }

  /**
   * One HTTP request: the counter and the three histograms share the key; `make(ctx)`
   * builds the label object only for a new series (memoise it in ctx to share it).
   */
  recordRequest<C>(key: string, make: (ctx: C) => Labels, ctx: C, durationMs: number, requestBytes: number, responseBytes: number): void {
    const now = this.clock.now();
    this.requestsTotal.inc(key, make, ctx, 1, now);
    this.requestDuration.observe(key, make, ctx, durationMs, now);
    this.requestBytes.observe(key, make, ctx, requestBytes, now);
    this.responseBytes.observe(key, make, ctx, responseBytes, now);
  }

  /** A request counted without size or timing: a connection refused at the listener (NR). */
  recordRefusedRequest<C>(key: string, make: (ctx: C) => Labels, ctx: C): void {
    this.requestsTotal.inc(key, make, ctx, 1, this.clock.now());
  }

  recordTcp<C>(key: string, make: (ctx: C) => Labels, ctx: C, opened: number, closed: number, sentBytes: number, receivedBytes: number): void {
    const now = this.clock.now();
    if (opened > 0) this.tcpOpened.inc(key, make, ctx, opened, now);
    if (closed > 0) this.tcpClosed.inc(key, make, ctx, closed, now);
    // A connection's byte counters exist from its first entry, at 0 if nothing moved yet.
    if (sentBytes > 0 || opened > 0) this.tcpSentBytes.inc(key, make, ctx, sentBytes, now);
    if (receivedBytes > 0 || opened > 0) this.tcpReceivedBytes.inc(key, make, ctx, receivedBytes, now);
  }
}
