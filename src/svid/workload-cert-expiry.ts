import { Gauge, type Registry } from 'prom-client';
import type { Clock } from '../common/clock.js';
import type { Identity } from '../auth/identity.js';
import { parseWorkloadSpiffeId } from '../mesh/spiffe-identity.js';

/**
 * When each workload's certificate runs out, so a renewal that is not happening shows before it
 * breaks anything:
 *
 *   meshd_workload_cert_expiry_timestamp_seconds{namespace, service_account, source}
 *   meshd_workload_cert_issued_timestamp_seconds{namespace, service_account, source}
 *
 * One series per identity and source, not per workload (bounded by the mesh's identities): the
 * certificate of that identity that expires first, its notAfter and its notBefore. An alert
 * compares them with time() (past 90 % of its life: envoy/prometheus-rules.yml).
 *
 * - source="sds": SVIDs meshd made and holds for proxies with an open xDS stream, read at scrape
 *   time; a proxy that goes away drops out with its last stream.
 * - source="csr": certificates signed through the CSR API (agents). A renewal authenticated with
 *   the previous certificate replaces it (its serial); a certificate nobody renewed is dropped
 *   when it expires (the workload is gone, or broken, and the alert has fired before that).
 */
export interface HeldCertificate {
  namespace: string;
  serviceAccount: string;
  notBefore: number;
  notAfter: number;
}

export interface WorkloadCertExpiryDeps {
  registry: Registry;
  clock: Clock;
  /** The SVIDs of connected proxies (meshd's own issuance), read at each scrape. */
  sdsHeld: () => Iterable<HeldCertificate>;
  /** Most CSR API certificates tracked at once (default 200,000); beyond, new ones are not tracked. */
  maxTracked?: number;
}

const DEFAULT_MAX_TRACKED = 200_000;

export class WorkloadCertExpiry {
  /** CSR API certificates by serial (lowercase hex without leading zeros). */
  private readonly csr = new Map<string, HeldCertificate>();
  private readonly maxTracked: number;

  constructor(private readonly deps: WorkloadCertExpiryDeps) {
    this.maxTracked = deps.maxTracked ?? DEFAULT_MAX_TRACKED;
    const labelNames = ['namespace', 'service_account', 'source'] as const;
    // Computed at each scrape from what is held then; each gauge reads its own field.
    const gauge = (name: string, help: string, field: 'notAfter' | 'notBefore'): void => {
      const self = this;
      new Gauge({
        name, help, labelNames, registers: [deps.registry],
        collect() {
          this.reset();
          for (const [labels, cert] of self.firstExpiring()) this.set(labels, Math.floor(cert[field] / 1000));
        },
      });
    };
    gauge('meshd_workload_cert_expiry_timestamp_seconds',
      'notAfter (Unix seconds) of the first-expiring certificate held by a workload of this identity: source="sds" for SVIDs meshd serves to connected proxies, "csr" for certificates signed through the CSR API and not yet renewed.',
      'notAfter');
    gauge('meshd_workload_cert_issued_timestamp_seconds',
      'notBefore (Unix seconds) of the same certificate as meshd_workload_cert_expiry_timestamp_seconds.', 'notBefore');
  }

  /** A certificate signed through the CSR API for `identity`; one it presented (a renewal) is replaced. */
  csrIssued(identity: Pick<Identity, 'namespace' | 'serviceAccount' | 'certificateSerial'>, cert: { serialHex: string; notBefore: Date; notAfter: Date }): void {
    if (identity.certificateSerial !== undefined) this.csr.delete(normalSerial(identity.certificateSerial));
    this.prune();
    if (this.csr.size >= this.maxTracked) return;
    this.csr.set(normalSerial(cert.serialHex), {
      namespace: identity.namespace, serviceAccount: identity.serviceAccount, notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime(),
    });
  }

  get trackedCsr(): number {
    return this.csr.size;
  }

  private prune(): void {
    const now = this.deps.clock.now();
    for (const [serial, cert] of this.csr) if (cert.notAfter <= now) this.csr.delete(serial);
  }

  private firstExpiring(): Map<{ namespace: string; service_account: string; source: string }, HeldCertificate> {
    this.prune();
    const byKey = new Map<string, { labels: { namespace: string; service_account: string; source: string }; cert: HeldCertificate }>();
    const add = (source: string, cert: HeldCertificate): void => {
      const key = `${source}\n${cert.namespace}\n${cert.serviceAccount}`;
      const seen = byKey.get(key);
      if (seen === undefined) byKey.set(key, { labels: { namespace: cert.namespace, service_account: cert.serviceAccount, source }, cert });
      else if (cert.notAfter < seen.cert.notAfter) seen.cert = cert;
    };
    for (const cert of this.csr.values()) add('csr', cert);
    for (const cert of this.deps.sdsHeld()) add('sds', cert);
    return new Map([...byKey.values()].map((v) => [v.labels, v.cert]));
  }
}

/** Node prints serials upper-case and may keep leading zeros; the CA's serialHex is lowercase without them. */
export function normalSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}

/** The SVIDs meshd holds for connected proxies: each (identity, node id) with an open stream, once. */
export function connectedSvids(
  connections: () => Iterable<{ proxyId: string; spiffeId: string }>,
  peek: (proxyId: string, spiffeId: string) => { notBefore: Date; notAfter: Date } | undefined,
): () => Iterable<HeldCertificate> {
  return function* () {
    const seen = new Set<string>();
    for (const c of connections()) {
      const key = `${c.spiffeId}\n${c.proxyId}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const svid = peek(c.proxyId, c.spiffeId);
      const id = parseWorkloadSpiffeId(c.spiffeId);
      if (svid === undefined || id === undefined) continue;
      yield { namespace: id.namespace, serviceAccount: id.serviceAccount, notBefore: svid.notBefore.getTime(), notAfter: svid.notAfter.getTime() };
    }
  };
}
