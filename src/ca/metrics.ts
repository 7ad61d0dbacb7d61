import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Clock } from '../common/clock.js';
import type { CaErrorCode } from './errors.js';

/**
 * istiod's CA metrics (security/pkg/server/ca/monitoring.go), same names,
 * same meaning, no _total suffix (Istio exports WithoutCounterSuffixes; prom-client adds
 * none either), plus meshd_* for what Istio does not measure (those counters end in _total,
 * as promtool's lint asks of names Istio does not dictate).
 */
export class CaMetrics {
  /** Every signing request: a CSR, or a key meshd generates (SDS path). */
  readonly csrCount: Counter;
  readonly successCount: Counter;
  readonly signErrors: Counter<'error'>;
  readonly csrParsingErrors: Counter;
  readonly rootExpiryTimestamp: Gauge;
  readonly rootExpirySeconds: Gauge;
  readonly chainExpiryTimestamp: Gauge;
  readonly chainExpirySeconds: Gauge;
  readonly issuanceDuration: Histogram<'key_type' | 'method'>;
  readonly validatorRejections: Counter;
  readonly bundleRoots: Gauge;
  readonly bundleSequence: Gauge;

  private rootExpiryMs: number | undefined;
  private chainExpiryMs: number | undefined;

  constructor(registry: Registry, clock: Clock) {
    const fresh = (name: string): string => {
      // One CA per registry: a CA re-opened in the same process takes the names over.
      if (registry.getSingleMetric(name)) registry.removeSingleMetric(name);
      return name;
    };
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias
    this.csrCount = new Counter({ name: fresh('citadel_server_csr_count'), help: 'The number of certificate signing requests received (CSRs and meshd-generated keys).', registers: [registry] });
    this.successCount = new Counter({ name: fresh('citadel_server_success_cert_issuance_count'), help: 'The number of certificates issued successfully.', registers: [registry] });
    this.signErrors = new Counter({
      name: fresh('citadel_server_csr_sign_err_count'), help: 'The number of errors occurred when signing a CSR, by error kind.',
      labelNames: ['error'], registers: [registry],
    });
    this.csrParsingErrors = new Counter({ name: fresh('citadel_server_csr_parsing_err_count'), help: 'The number of errors occurred when parsing a CSR.', registers: [registry] });
    this.rootExpiryTimestamp = new Gauge({
      name: fresh('citadel_server_root_cert_expiry_timestamp'), help: 'The unix timestamp, in seconds, when the signing root certificate expires.', registers: [registry],
      collect() { if (self.rootExpiryMs !== undefined) this.set(Math.floor(self.rootExpiryMs / 1000)); },
    });
    this.rootExpirySeconds = new Gauge({
      name: fresh('citadel_server_root_cert_expiry_seconds'), help: 'The time remaining, in seconds, before the signing root certificate expires.', registers: [registry],
      collect() { if (self.rootExpiryMs !== undefined) this.set((self.rootExpiryMs - clock.now()) / 1000); },
    });
    this.chainExpiryTimestamp = new Gauge({
      name: fresh('citadel_server_cert_chain_expiry_timestamp'), help: 'The unix timestamp, in seconds, when the plug-in CA certificate chain expires.', registers: [registry],
      collect() { if (self.chainExpiryMs !== undefined) this.set(Math.floor(self.chainExpiryMs / 1000)); },
    });
    this.chainExpirySeconds = new Gauge({
      name: fresh('citadel_server_cert_chain_expiry_seconds'), help: 'The time remaining, in seconds, before the plug-in CA certificate chain expires.', registers: [registry],
      collect() { if (self.chainExpiryMs !== undefined) this.set((self.chainExpiryMs - clock.now()) / 1000); },
    });
    this.issuanceDuration = new Histogram({
      name: fresh('meshd_ca_issuance_duration_seconds'), help: 'Time to issue one X.509-SVID: key generation (method="key") or CSR checks, signing, validation.',
      labelNames: ['key_type', 'method'], registers: [registry],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    this.validatorRejections = new Counter({
      name: fresh('meshd_ca_minted_certificate_rejected_total'), help: 'Certificates meshd minted that failed its own X509-SVID validation and were not handed out (a bug).', registers: [registry],
    });
    this.bundleRoots = new Gauge({ name: fresh('meshd_ca_trust_bundle_roots'), help: 'Roots in the trust bundle.', registers: [registry] });
    this.bundleSequence = new Gauge({ name: fresh('meshd_ca_trust_bundle_sequence'), help: 'spiffe_sequence of the trust bundle.', registers: [registry] });
    for (const code of ['CSR_ERROR', 'TTL_ERROR', 'CERT_GEN_ERROR', 'CA_NOT_READY'] satisfies CaErrorCode[]) this.signErrors.inc({ error: code }, 0);
  }

  private readonly durationChildren = new Map<string, { observe(v: number): void }>();

  /** Histogram children cached per label pair: labels() hashes its argument on every call. */
  observeIssuance(keyType: string, method: 'key' | 'csr', seconds: number): void {
    const key = `${keyType}/${method}`;
    let child = this.durationChildren.get(key);
    if (!child) {
      child = this.issuanceDuration.labels({ key_type: keyType, method });
      this.durationChildren.set(key, child);
    }
    child.observe(seconds);
  }

  signError(code: CaErrorCode): void {
    this.signErrors.inc({ error: code });
  }

  setRootExpiry(ms: number | undefined): void {
    this.rootExpiryMs = ms;
  }

  setChainExpiry(ms: number | undefined): void {
    this.chainExpiryMs = ms;
  }
}
