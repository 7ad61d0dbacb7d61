import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import { describeCause } from '../errors.js';
import type { StoreHealth } from '../health.js';
import type { Fence, LeaderElection } from '../leader.js';
import { LEADER_LOCK, LOCK_NAMESPACE } from './advisory-locks.js';
import { isConnectionError } from './connection-errors.js';
import type { StoreSession } from './session.js';

/**
 * Leader election on a PostgreSQL advisory lock held by the store session.
 *
 * Each poll of the session (every `pollIntervalMs`), a replica that does not lead tries
 * `pg_try_advisory_lock`; the one that gets it raises the term in `meshd_leader` and leads
 * with that term as its fence. A leader checks each poll that its session still holds the
 * lock. It stops leading the moment its session is lost (socket error or end, the server
 * ending it, a health query timing out); the server frees the lock when the session ends.
 *
 * Takeover bound: when a leader's session ends (its process dies, pg_terminate_backend), the
 * lock is free at once and another replica takes it at its next poll: within `pollIntervalMs`
 * plus one query. When a leader's host vanishes without closing its socket, the server frees
 * the lock once TCP keepalives give up on it (about 11 s, see session.ts), then a poll later.
 */
export class PgLeaderElection implements LeaderElection {
  private fence: Fence | undefined;
  private pollCount = 0;
  private readonly listeners = new Set<(fence: Fence | undefined) => void>();
  private stopListening: (() => void) | undefined;

  constructor(
    private readonly session: StoreSession,
    private readonly replicaId: string,
    private readonly deps: { clock: Clock; logger: Logger; health: StoreHealth },
  ) {}

  start(): void {
    this.stopListening = this.session.listen({
      up: () => this.pollQuietly(),
      tick: () => this.pollQuietly(),
      down: () => this.lose('the store session was lost'),
    });
  }

  /** How many times this replica has polled (tried the lock, or checked it still holds it). */
  get polls(): number {
    return this.pollCount;
  }

  current(): Fence | undefined {
    return this.fence;
  }

  onChange(listener: (fence: Fence | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Gives the lead up (a clean shutdown), so another replica takes it at its next poll. */
  async close(): Promise<void> {
    this.stopListening?.();
    if (!this.fence) return;
    this.lose('this replica is shutting down');
    if (this.session.isUp) await this.session.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, LEADER_LOCK]).catch(() => undefined);
  }

  /** A poll that failed for a lost session is not reported again (the session says so). */
  private async pollQuietly(): Promise<void> {
    try {
      await this.poll();
    } catch (err) {
      if (isConnectionError(err)) this.deps.logger.debug({ err: describeCause(err) }, 'a leader poll failed');
      else this.deps.logger.warn({ err: describeCause(err) }, 'a leader poll failed');
    }
  }

  private async poll(): Promise<void> {
    this.pollCount++;
    if (this.fence) {
      const rows = await this.session.query<{ held: boolean }>(
        // objsubid 2 marks the two-key form of an advisory lock (PostgreSQL docs, pg_locks).
        `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
           AND classid = $1 AND objid = $2 AND objsubid = 2 AND granted) AS held`,
        [LOCK_NAMESPACE, LEADER_LOCK],
      );
      if (!rows[0]?.held) this.lose('the leader lock is no longer held by this session');
      return;
    }
    const rows = await this.session.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS got', [LOCK_NAMESPACE, LEADER_LOCK]);
    if (!rows[0]?.got) return;
    let term: number;
    try {
      const updated = await this.session.query<{ term: string }>(
        'UPDATE meshd_leader SET term = term + 1, holder = $1, acquired_at = $2 WHERE id = 1 RETURNING term',
        [this.replicaId, new Date(this.deps.clock.now())],
      );
      if (updated.length !== 1) throw new Error('meshd_leader has no row');
      term = Number(updated[0]!.term);
    } catch (err) {
      this.deps.logger.error({ err: describeCause(err) }, 'took the leader lock but could not record the new term; giving the lock back');
      if (this.session.isUp) await this.session.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, LEADER_LOCK]).catch(() => undefined);
      return;
    }
    if (!this.session.isUp) return; // lost while the term was raised: the lock went with the session
    this.fence = Object.freeze({ term });
    this.deps.health.setLeader(true);
    this.deps.logger.info({ term, replica: this.replicaId }, 'this replica is now the leader');
    this.emit();
  }

  private lose(reason: string): void {
    if (!this.fence) return;
    this.deps.logger.warn({ term: this.fence.term, reason }, 'this replica is no longer the leader');
    this.fence = undefined;
    this.deps.health.setLeader(false);
    this.emit();
  }

  private emit(): void {
    for (const listener of this.listeners) listener(this.fence);
  }
}
