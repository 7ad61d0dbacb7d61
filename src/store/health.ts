import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Whether this replica can reach the store, for /metrics and for callers that must not start
 * once-only work they could not persist. "Up" means the store's session is connected and its
 * last health query answered.
 */
export class StoreHealth {
  private up = false;
  private readonly listeners = new Set<(up: boolean) => void>();
  private readonly upGauge: Gauge;
  private readonly leaderGauge: Gauge;
  readonly reconnectAttempts: Counter;

  constructor(registry: Registry) {
    const fresh = (name: string): string => {
      // One store per registry: a store re-opened in the same process takes the names over.
      if (registry.getSingleMetric(name)) registry.removeSingleMetric(name);
      return name;
    };
    this.upGauge = new Gauge({ name: fresh('meshd_store_up'), help: 'Whether the shared store (PostgreSQL) is reachable: 1 or 0.', registers: [registry] });
    this.upGauge.set(0);
    this.leaderGauge = new Gauge({ name: fresh('meshd_store_leader'), help: 'Whether this replica holds the leader lock and does the once-only work: 1 or 0.', registers: [registry] });
    this.leaderGauge.set(0);
    this.reconnectAttempts = new Counter({ name: fresh('meshd_store_reconnect_attempts_total'), help: 'Attempts to reconnect to the shared store after losing it.', registers: [registry] });
  }

  get isUp(): boolean {
    return this.up;
  }

  set(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    this.upGauge.set(up ? 1 : 0);
    for (const listener of this.listeners) listener(up);
  }

  setLeader(leader: boolean): void {
    this.leaderGauge.set(leader ? 1 : 0);
  }

  onChange(listener: (up: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
