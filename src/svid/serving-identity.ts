import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import type { CertificateAuthority, IssuedKeyPair } from '../ca/types.js';
import { rotationDueAt, type RotationPolicy } from '../common/renewal-policy.js';
import { RenewalTimer } from '../common/renewal-timer.js';
import { SERVING_RENEWAL_RETRY_MS } from '../common/defaults.js';
import { formatDuration } from '../common/duration.js';

export const DEFAULT_SERVING_DNS_NAMES = ['meshd', 'meshd.istio-system', 'meshd.istio-system.svc', 'localhost'];

export interface ServingIdentityDeps {
  ca: CertificateAuthority;
  clock: Clock;
  logger: Logger;
  spiffeId: string;
  dnsNames: readonly string[];
  ttlMs: number;
  rotation: RotationPolicy;
  /** A draw in [0, 1) for the rotation jitter (default Math.random). */
  random?: () => number;
  onRenewed: (svid: IssuedKeyPair) => void;
}

/**
 * Issues meshd's serving SVID and renews it like any other: at the rotation fraction of
 * its lifetime, and at once when the trust bundle changes. A failed renewal is retried
 * every SERVING_RENEWAL_RETRY_MS (30 s) while the current certificate stays in use.
 */
export class ServingIdentity {
  private readonly timer: RenewalTimer;
  private readonly random: () => number;
  private current: IssuedKeyPair | undefined;
  private stopped = false;

  constructor(private readonly deps: ServingIdentityDeps) {
    this.timer = new RenewalTimer(deps.clock, () => void this.renew());
    this.random = deps.random ?? Math.random;
  }

  async start(): Promise<IssuedKeyPair> {
    const svid = await this.issue();
    this.schedule(svid);
    return svid;
  }

  get svid(): IssuedKeyPair | undefined {
    return this.current;
  }

  /** Re-issue now (the bundle changed). */
  async renew(): Promise<void> {
    if (this.stopped) return;
    try {
      const svid = await this.issue();
      this.deps.onRenewed(svid);
      this.schedule(svid);
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, `renewing the serving certificate failed; retrying in ${formatDuration(SERVING_RENEWAL_RETRY_MS)}`);
      this.timer.in(SERVING_RENEWAL_RETRY_MS);
    }
  }

  stop(): void {
    this.stopped = true;
    this.timer.stop();
  }

  private async issue(): Promise<IssuedKeyPair> {
    const svid = await this.deps.ca.issue({ spiffeId: this.deps.spiffeId, dnsNames: [...this.deps.dnsNames], ttlMs: this.deps.ttlMs });
    this.current = svid;
    this.deps.logger.info({ spiffeId: svid.spiffeId, serial: svid.serialHex, notAfter: svid.notAfter.toISOString() }, 'serving certificate issued');
    return svid;
  }

  /** At the rotation point, but not sooner than a second from now. */
  private schedule(svid: IssuedKeyPair): void {
    const due = rotationDueAt(svid.notBefore.getTime(), svid.notAfter.getTime(), this.deps.rotation, this.random());
    this.timer.in(Math.max(1000, due - this.deps.clock.now()));
  }
}
