import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import type { CertificateAuthority, IssuedKeyPair } from '../ca/types.js';
import { rotationDueAt, type RotationPolicy } from '../common/renewal-policy.js';

/** The control plane's own identity, as istiod's is spiffe://<td>/ns/istio-system/sa/istiod. */
export function controlPlaneSpiffeId(trustDomain: string, namespace = 'istio-system'): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/meshd`;
}

export const DEFAULT_SERVING_DNS_NAMES = ['meshd', 'meshd.istio-system', 'meshd.istio-system.svc', 'localhost'];

export interface ServingIdentityDeps {
  ca: CertificateAuthority;
  clock: Clock;
  logger: Logger;
  spiffeId: string;
  dnsNames: readonly string[];
  ttlMs: number;
  rotation: RotationPolicy;
  onRenewed: (svid: IssuedKeyPair) => void;
}

/**
 * Issues meshd's serving SVID and renews it like any other: at the rotation fraction of
 * its lifetime, and at once when the trust bundle changes. A failed renewal is retried
 * with backoff while the current certificate stays in use.
 */
export class ServingIdentity {
  private timer: NodeJS.Timeout | undefined;
  private current: IssuedKeyPair | undefined;
  private stopped = false;

  constructor(private readonly deps: ServingIdentityDeps) {}

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
      this.deps.logger.error({ err: (err as Error).message }, 'renewing the serving certificate failed; retrying in 30s');
      this.arm(30_000);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async issue(): Promise<IssuedKeyPair> {
    const svid = await this.deps.ca.issue({ spiffeId: this.deps.spiffeId, dnsNames: [...this.deps.dnsNames], ttlMs: this.deps.ttlMs });
    this.current = svid;
    this.deps.logger.info({ spiffeId: svid.spiffeId, serial: svid.serialHex, notAfter: svid.notAfter.toISOString() }, 'serving certificate issued');
    return svid;
  }

  private schedule(svid: IssuedKeyPair): void {
    const due = rotationDueAt(svid.notBefore.getTime(), svid.notAfter.getTime(), this.deps.rotation, Math.random());
    this.arm(Math.max(1000, due - this.deps.clock.now()));
  }

  private arm(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    const dueAt = this.deps.clock.now() + ms;
    // setTimeout holds at most ~24.8 days: wake up in steps until the renewal is due.
    const step = (): void => {
      const left = dueAt - this.deps.clock.now();
      if (left > 0) {
        this.timer = setTimeout(step, Math.min(left, 2 ** 31 - 1));
        this.timer.unref();
      } else {
        void this.renew();
      }
    };
    step();
  }
}
