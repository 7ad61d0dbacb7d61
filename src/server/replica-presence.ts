import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { LeaderElection } from '../store/leader.js';
import type { ProxyConnection, ProxyRegistry, ReplicaInfo } from '../store/proxy-registry.js';

/** How often a replica heartbeats and writes which proxies it gained and lost. */
export const PRESENCE_INTERVAL_MS = 5_000;
/** A replica whose heartbeat is older than this is shown as gone, and the leader removes it. */
export const PRESENCE_TTL_MS = 30_000;

export interface ReplicaPresenceOptions {
  registry: ProxyRegistry;
  replica: ReplicaInfo;
  /** The proxies connected to this replica now (one entry per stream; a proxy may have several). */
  connections: () => ReadonlyArray<{ proxyId: string; connectedAt: number }>;
  leader: LeaderElection;
  clock: Clock;
  logger: Logger;
  intervalMs?: number;
  ttlMs?: number;
}

/**
 * This replica's row in the store's proxy registry, so `meshd proxy-status --store` can list the
 * proxies of every replica and ask each replica for its own.
 *
 * Every interval: a heartbeat, then only the difference from what was written last (proxies
 * that connected, proxies that left), so a replica holding 10,000 quiet proxies writes one row.
 * When the heartbeat finds the row gone (the store expired it while this replica was cut off)
 * or a write failed, the next round rewrites the whole set. The leader removes replicas whose
 * heartbeat stopped. A failure is logged when the registry becomes unwritable and when it
 * recovers, not every round; serving proxies never waits on it.
 */
export class ReplicaPresence {
  private written = new Map<string, number>();
  private rewrite = true;
  private failing = false;
  private cancel: (() => void) | undefined;
  private round: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly o: ReplicaPresenceOptions) {}

  start(): void {
    this.schedule(0);
  }

  /** Stops the rounds and removes this replica and its proxies from the registry (best effort). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    await this.round;
    await this.o.registry.remove(this.o.replica.id).catch((err: unknown) =>
      this.o.logger.warn({ err: (err as Error).message }, 'could not remove this replica from the proxy registry; the leader expires it'));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.cancel = this.o.clock.timer(ms, () => {
      this.round = this.once().finally(() => this.schedule(this.o.intervalMs ?? PRESENCE_INTERVAL_MS));
    });
  }

  /** One round; exposed for tests that drive the clock. */
  async once(): Promise<void> {
    const now = this.o.clock.now();
    const current = currentProxies(this.o.connections());
    try {
      const { recreated } = await this.o.registry.heartbeat(this.o.replica, now);
      if (recreated || this.rewrite) {
        await this.o.registry.replaceAll(this.o.replica.id, [...current].map(([proxyId, connectedAt]) => ({ proxyId, connectedAt })));
      } else {
        const added: ProxyConnection[] = [];
        for (const [proxyId, connectedAt] of current) if (!this.written.has(proxyId)) added.push({ proxyId, connectedAt });
        const removed = [...this.written.keys()].filter((id) => !current.has(id));
        await this.o.registry.connected(this.o.replica.id, added);
        await this.o.registry.disconnected(this.o.replica.id, removed);
      }
      this.written = current;
      this.rewrite = false;
      const fence = this.o.leader.current();
      if (fence) {
        const expired = await this.o.registry.expire(now, this.o.ttlMs ?? PRESENCE_TTL_MS, fence);
        if (expired > 0) this.o.logger.info({ replicas: expired }, 'removed replicas that stopped heartbeating from the proxy registry');
      }
      if (this.failing) this.o.logger.info('the proxy registry is written again');
      this.failing = false;
    } catch (err) {
      this.rewrite = true;
      if (!this.failing) this.o.logger.warn({ err: (err as Error).message }, 'cannot write this replica\'s proxies to the store; proxy-status --store shows them again once it can');
      this.failing = true;
    }
  }
}

/** One entry per proxy id, with its earliest stream's connection time. */
function currentProxies(connections: ReadonlyArray<{ proxyId: string; connectedAt: number }>): Map<string, number> {
  const proxies = new Map<string, number>();
  for (const c of connections) {
    const seen = proxies.get(c.proxyId);
    if (seen === undefined || c.connectedAt < seen) proxies.set(c.proxyId, c.connectedAt);
  }
  return proxies;
}
