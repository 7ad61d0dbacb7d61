import { Counter, Gauge, type Registry } from 'prom-client';
import { CounterFamily, HistogramFamily, type Labels } from './series-family.js';

/**
 * Istio's standard metrics (istio.md §7.1; istio.io "Istio Standard Metrics"), built
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

export interface IstioMetricsOptions {
  registry: Registry;
  /** Label combinations kept per metric family; beyond it entries are counted and not recorded. */
  maxSeriesPerMetric?: number | undefined;
  durationBuckets?: readonly number[] | undefined;
  bytesBuckets?: readonly number[] | undefined;
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

  constructor(options: IstioMetricsOptions) {
    const { registry } = options;
    const maxSeries = options.maxSeriesPerMetric ?? DEFAULT_MAX_SERIES_PER_METRIC;
    if (!Number.isInteger(maxSeries) || maxSeries < 1) {
      throw new RangeError(`maxSeriesPerMetric must be a positive integer, got ${maxSeries}`);
    }
    this.seriesDropped = new Counter({
      name: 'meshd_telemetry_series_dropped_total',
      help: 'Access-log observations not recorded because the metric family reached its label-combination bound.',
      labelNames: ['metric'],
      registers: [registry],
    });
    const onDrop = (metric: string): void => this.seriesDropped.inc({ metric });
    const http = (name: string, help: string) => ({ name, help, labelNames: HTTP_LABEL_NAMES, maxSeries, onDrop });
    const tcp = (name: string, help: string) => ({ name, help, labelNames: TCP_LABEL_NAMES, maxSeries, onDrop });
    const durationBuckets = options.durationBuckets ?? ENVOY_DEFAULT_BUCKETS;
    const bytesBuckets = options.bytesBuckets ?? ENVOY_DEFAULT_BUCKETS;

    this.requestsTotal = new CounterFamily(http('istio_requests_total',
      'Requests handled by a sidecar, from its access logs (Istio standard metric).')).register(registry);
    this.requestDuration = new HistogramFamily({ ...http('istio_request_duration_milliseconds',
      'Request duration in milliseconds, from the sidecar access logs (Istio standard metric).'), buckets: durationBuckets }).register(registry);
    this.requestBytes = new HistogramFamily({ ...http('istio_request_bytes',
      'Request size in bytes (wire bytes where Envoy logs them), from the sidecar access logs (Istio standard metric).'), buckets: bytesBuckets }).register(registry);
    this.responseBytes = new HistogramFamily({ ...http('istio_response_bytes',
      'Response size in bytes (wire bytes where Envoy logs them), from the sidecar access logs (Istio standard metric).'), buckets: bytesBuckets }).register(registry);
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
    new Gauge({
      name: 'meshd_telemetry_series',
      help: 'Label combinations currently held per istio_* metric family.',
      labelNames: ['metric'],
      registers: [registry],
      collect() {
        for (const f of families) this.set({ metric: f.name }, f.size);
      },
    });
  }

  /** One HTTP request: the counter and the three histograms share the label set and key. */
  recordRequest(key: string, labels: () => Labels, durationMs: number, requestBytes: number, responseBytes: number): void {
    // Memoise the label object so the four families share one (and one formatted string).
    let made: Labels | undefined;
    const once = (): Labels => (made ??= labels());
    this.requestsTotal.inc(key, once);
    this.requestDuration.observe(key, once, durationMs);
    this.requestBytes.observe(key, once, requestBytes);
    this.responseBytes.observe(key, once, responseBytes);
  }

  /** A request counted without size or timing: a connection refused at the listener (NR). */
  recordRefusedRequest(key: string, labels: () => Labels): void {
    this.requestsTotal.inc(key, labels);
  }

  recordTcp(key: string, labels: () => Labels, opened: number, closed: number, sentBytes: number, receivedBytes: number): void {
    let made: Labels | undefined;
    const once = (): Labels => (made ??= labels());
    if (opened > 0) this.tcpOpened.inc(key, once, opened);
    if (closed > 0) this.tcpClosed.inc(key, once, closed);
    if (sentBytes > 0 || opened > 0) this.tcpSentBytes.inc(key, once, sentBytes);
    if (receivedBytes > 0 || opened > 0) this.tcpReceivedBytes.inc(key, once, receivedBytes);
  }
}
