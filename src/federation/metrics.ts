import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Federation metrics. Series are per foreign trust domain (as many as the config federates
 * with) and are removed when a trust domain leaves the config. The alert in
 * envoy/prometheus-rules.yml compares the age of the last refresh with the interval.
 */
export class FederationMetrics {
  readonly lastRefresh: Gauge<'trust_domain'>;
  readonly interval: Gauge<'trust_domain'>;
  readonly sequence: Gauge<'trust_domain'>;
  readonly authorities: Gauge<'trust_domain'>;
  readonly failures: Counter<'trust_domain' | 'reason'>;
  readonly updates: Counter<'trust_domain'>;
  readonly storeErrors: Counter<'operation'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.lastRefresh = new Gauge({
      name: 'meshd_federation_bundle_last_refresh_timestamp_seconds',
      help: 'When the bundle in force for a foreign trust domain was last confirmed by its source (the endpoint, the file or the config); when none was ever obtained, when the trust domain was configured.',
      labelNames: ['trust_domain'], registers,
    });
    this.interval = new Gauge({
      name: 'meshd_federation_refresh_interval_seconds',
      help: "How often a foreign trust domain's bundle is refreshed (its spiffe_refresh_hint, bounded); absent for a bundle written in the config.",
      labelNames: ['trust_domain'], registers,
    });
    this.sequence = new Gauge({
      name: 'meshd_federation_bundle_sequence',
      help: 'spiffe_sequence of the bundle in force for a foreign trust domain (absent when the bundle has none).',
      labelNames: ['trust_domain'], registers,
    });
    this.authorities = new Gauge({
      name: 'meshd_federation_bundle_authorities',
      help: 'X.509 authorities (CA certificates) trusted for a foreign trust domain.',
      labelNames: ['trust_domain'], registers,
    });
    this.failures = new Counter({
      name: 'meshd_federation_refresh_failures_total',
      help: 'Failed refreshes of a foreign bundle by reason; the last good bundle stays in force.',
      labelNames: ['trust_domain', 'reason'], registers,
    });
    this.updates = new Counter({
      name: 'meshd_federation_bundle_updates_total',
      help: 'Times the bundle in force for a foreign trust domain changed (new authorities or sequence).',
      labelNames: ['trust_domain'], registers,
    });
    this.storeErrors = new Counter({
      name: 'meshd_federation_store_errors_total',
      help: 'Failures to read or write stored foreign bundles (the bundle in memory stays in force).',
      labelNames: ['operation'], registers,
    });
  }

  private readonly reasonsSeen = new Map<string, Set<string>>();

  failed(trustDomain: string, reason: string): void {
    this.failures.inc({ trust_domain: trustDomain, reason });
    let seen = this.reasonsSeen.get(trustDomain);
    if (!seen) this.reasonsSeen.set(trustDomain, (seen = new Set()));
    seen.add(reason);
  }

  /** Drops every series of a trust domain that left the config. */
  forget(trustDomain: string): void {
    for (const g of [this.lastRefresh, this.interval, this.sequence, this.authorities]) g.remove({ trust_domain: trustDomain });
    this.updates.remove({ trust_domain: trustDomain });
    for (const reason of this.reasonsSeen.get(trustDomain) ?? []) this.failures.remove({ trust_domain: trustDomain, reason });
    this.reasonsSeen.delete(trustDomain);
  }
}
