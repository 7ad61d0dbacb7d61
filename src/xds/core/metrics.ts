import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * istiod's xDS metrics, under Istio's names and buckets, so dashboards
 * built for istiod work unchanged. Counters keep Istio's names without a `_total` suffix.
 */
export class CoreMetrics {
  /** pilot_xds: connected xDS streams, labelled with the server version as istiod does. */
  readonly connected: Gauge<'version'>;
  /** pilot_xds_pushes{type}: responses sent per type; `<type>_senderr` when the write failed. */
  readonly pushes: Counter<'type'>;
  /** pilot_xds_push_time{type}: generate + encode + write of one response, seconds. */
  readonly pushTime: Histogram<'type'>;
  /** pilot_proxy_convergence_time: push queued → the proxy ACKed it, seconds. */
  readonly convergence: Histogram;
  readonly rejects: Counter<'type'>;
  readonly expiredNonce: Counter<'type'>;
  /** pilot_push_triggers{type}: why pushes were queued (config, secret, endpoint, ...). */
  readonly pushTriggers: Counter<'type'>;
  readonly internalErrors: Counter;
  /** meshd_xds_pushes_deferred_total: pushes held back because the client was not reading (no Istio equivalent). */
  readonly pushesDeferred: Counter;

  constructor(registry: Registry, readonly version: string) {
    const registers = [registry];
    this.connected = new Gauge({ name: 'pilot_xds', help: 'Number of endpoints connected to this pilot using XDS.', labelNames: ['version'], registers });
    this.connected.set({ version }, 0);
    this.pushes = new Counter({ name: 'pilot_xds_pushes', help: 'Pilot build and send errors for lds, rds, cds and eds.', labelNames: ['type'], registers });
    this.pushTime = new Histogram({
      name: 'pilot_xds_push_time', help: 'Total time in seconds Pilot takes to push lds, rds, cds and eds.',
      labelNames: ['type'], buckets: [0.01, 0.1, 0.5, 1, 3, 5, 10, 20, 30], registers,
    });
    this.convergence = new Histogram({
      name: 'pilot_proxy_convergence_time', help: 'Delay in seconds between config change and a proxy receiving all required configuration.',
      buckets: [0.1, 0.5, 1, 3, 5, 10, 20, 30], registers,
    });
    this.rejects = new Counter({ name: 'pilot_total_xds_rejects', help: 'Total number of XDS responses from pilot rejected by proxy.', labelNames: ['type'], registers });
    this.expiredNonce = new Counter({ name: 'pilot_xds_expired_nonce', help: 'Total number of XDS requests with an expired nonce.', labelNames: ['type'], registers });
    this.pushTriggers = new Counter({ name: 'pilot_push_triggers', help: 'Total number of times a push was triggered, labeled by reason for the push.', labelNames: ['type'], registers });
    this.pushesDeferred = new Counter({ name: 'meshd_xds_pushes_deferred_total', help: 'Pushes held back (merged, sent once the stream drains) because the proxy was not reading its xDS stream.', registers });
    this.internalErrors = new Counter({ name: 'pilot_total_xds_internal_errors', help: 'Total number of internal XDS errors in pilot.', registers });
  }
}
