import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import type { CertificateAuthority, IssueOptions, IssuedKeyPair, LeafKeyType } from '../ca/types.js';
import { TurnBatcher } from '../common/turn-batcher.js';
import { RenewalTimer } from '../common/renewal-timer.js';
import { SVID_SWEEP_MS } from '../common/defaults.js';
import { rotationDueAt, type RotationPolicy } from '../common/renewal-policy.js';

/**
 * Each proxy holds its own key pair and SVID, keyed by the identity it proved AND its node id:
 * a node id is only a name the client chose, so a stream of another identity that names the
 * same node id gets an entry of its own and can neither replace this one nor move its rotation.
 * A proxy that reconnects with the same node id and identity gets its current SVID back until
 * it is due for rotation, not a new one per reconnect. When an SVID becomes due, `onDue` is
 * told which (identity, node id) pairs to push to; the push asks `get` again, which then
 * re-issues. So a rotation storm flows through the discovery core's bounded push queue
 * instead of a burst of signing here.
 */
interface Entry {
  spiffeId: string;
  svid: IssuedKeyPair;
  dueAt: number;
  /** Due was already reported once; a proxy that is away is not re-reported every tick. */
  dueReported: boolean;
  /** One issuance at a time per proxy: concurrent streams of a proxy share it. */
  pending: Promise<IssuedKeyPair> | undefined;
}

export interface SvidCacheDeps {
  ca: CertificateAuthority;
  clock: Clock;
  logger: Logger;
  ttlMs: () => number;
  rotation: () => RotationPolicy;
  keyType?: LeafKeyType;
  random?: () => number;
  /** SVIDs now due, as svidKey(spiffeId, proxyId): push exactly the streams holding them a fresh one. */
  onDue: (due: ReadonlySet<string>) => void;
  /** How often due times are checked (default 1 s), on the clock's timer. */
  tickMs?: number;
}

/**
 * SVIDs asked for close together are issued with one ca.issueBatch() call, up to this many
 * (TurnBatcher: a full batch at once, the rest at the end of the loop turn): a fleet
 * connecting (or rotating) at once gets its keys and signatures made back to back, ~25% less
 * CPU per SVID than one by one, and one message per batch to a mint worker.
 */
const ISSUE_BATCH = 32;

/**
 * The key of one proxy's SVID state: its proven SPIFFE ID, a newline, its node id. A SPIFFE ID
 * is a URI and never holds a newline, so the first newline splits the two unambiguously.
 */
export function svidKey(spiffeId: string, proxyId: string): string {
  return `${spiffeId}\n${proxyId}`;
}

export class SvidCache {
  private readonly entries = new Map<string, Entry>();
  private readonly issuing: TurnBatcher<IssueOptions & { keyType: LeafKeyType }, IssuedKeyPair>;
  private readonly timer: RenewalTimer;
  private readonly tickMs: number;
  private readonly random: () => number;
  /** No entry can be due or expired before this: a tick before it skips the scan of every entry. */
  private nextCheckAt = 0;

  constructor(private readonly deps: SvidCacheDeps) {
    this.random = deps.random ?? Math.random;
    this.issuing = new TurnBatcher((requests) => deps.ca.issueBatch(requests), ISSUE_BATCH);
    this.tickMs = deps.tickMs ?? SVID_SWEEP_MS;
    this.timer = new RenewalTimer(deps.clock, () => this.sweep(), { everyMs: this.tickMs });
  }

  /** Sweeps every tick from now on. */
  start(): void {
    if (this.timer.dueAt === undefined) this.timer.in(this.tickMs);
  }

  stop(): void {
    this.timer.clear();
  }

  /** The proxy's current SVID for this identity, issuing one when absent, due or expired. */
  async get(proxyId: string, spiffeId: string): Promise<IssuedKeyPair> {
    const now = this.deps.clock.now();
    const key = svidKey(spiffeId, proxyId);
    const entry = this.entries.get(key);
    if (entry) {
      if (entry.pending) return entry.pending;
      if (now < entry.dueAt && now < entry.svid.notAfter.getTime()) return entry.svid;
    }
    return this.issue(key, proxyId, spiffeId);
  }

  /** Current SVID of this proxy and identity without issuing (debug view, tests). */
  peek(proxyId: string, spiffeId: string): IssuedKeyPair | undefined {
    return this.entries.get(svidKey(spiffeId, proxyId))?.svid;
  }

  /** Force every SVID to be re-issued on next request (e.g. after the signing root switched); returns their keys. */
  expireAll(): ReadonlySet<string> {
    for (const e of this.entries.values()) { e.dueAt = 0; e.dueReported = true; }
    this.nextCheckAt = 0;
    return new Set(this.entries.keys());
  }

  get size(): number {
    return this.entries.size;
  }

  private issue(key: string, proxyId: string, spiffeId: string): Promise<IssuedKeyPair> {
    const pending = this.issuing.submit({ spiffeId, ttlMs: this.deps.ttlMs(), keyType: this.deps.keyType ?? 'ec-p256' });
    const previous = this.entries.get(key);
    // Literals, not a spread of `previous`: V8 gives every spread clone a hidden class of its own (see issuer.ts withKey).
    const placeholder: Entry = previous
      ? { spiffeId, svid: previous.svid, dueAt: previous.dueAt, dueReported: previous.dueReported, pending }
      : { spiffeId, svid: undefined as unknown as IssuedKeyPair, dueAt: 0, dueReported: false, pending };
    this.entries.set(key, placeholder);
    return pending.then(
      (svid) => {
        const dueAt = rotationDueAt(svid.notBefore.getTime(), svid.notAfter.getTime(), this.deps.rotation(), this.random());
        if (this.entries.get(key) === placeholder) this.entries.set(key, { spiffeId, svid, dueAt, dueReported: false, pending: undefined });
        this.nextCheckAt = Math.min(this.nextCheckAt, dueAt);
        if (this.deps.logger.isLevelEnabled('debug')) {
          this.deps.logger.debug({ proxy: proxyId, spiffeId, serial: svid.serialHex, notAfter: svid.notAfter.toISOString() }, 'issued SVID');
        }
        return svid;
      },
      (err: unknown) => {
        if (this.entries.get(key) === placeholder) {
          if (previous) this.entries.set(key, previous);
          else this.entries.delete(key);
        }
        this.nextCheckAt = 0;
        throw err;
      },
    );
  }

  /** Finds due SVIDs; drops those of proxies that stayed away until their SVID expired. */
  sweep(): void {
    const now = this.deps.clock.now();
    if (now < this.nextCheckAt) return;
    const due = new Set<string>();
    let next = Infinity;
    for (const [key, e] of this.entries) {
      if (e.pending) continue; // its completion lowers nextCheckAt
      const expiresAt = e.svid.notAfter.getTime();
      if (now >= expiresAt) { this.entries.delete(key); continue; }
      if (now >= e.dueAt && !e.dueReported) {
        e.dueReported = true;
        due.add(key);
      }
      next = Math.min(next, e.dueReported ? expiresAt : Math.min(e.dueAt, expiresAt));
    }
    this.nextCheckAt = next;
    if (due.size > 0) this.deps.onDue(due);
  }
}
