import type { Logger } from '../../common/logger.js';
import { STORE_TOPICS, type ChangeFeed, type ChangeReason, type StoreTopic } from '../change-feed.js';
import type { Schedule } from '../deps.js';
import type { StoreSession } from './session.js';

/** The channel writers NOTIFY (payload: the topic) and every replica's session LISTENs on. */
export const NOTIFY_CHANNEL = 'meshd_store_changes';

/**
 * The change feed over LISTEN/NOTIFY. Subscribers are called:
 * - 'notify' when a committed write announces their topic (from any replica, this one too);
 * - 'reconnect' for every topic whenever the session (re)connects, since notifications sent
 *   while it was away are lost (PostgreSQL queues them only for sessions that LISTEN);
 * - 'periodic' for every topic each `resyncIntervalMs` while connected, so a notification
 *   lost any other way only delays a change.
 */
export class PgChangeFeed implements ChangeFeed {
  private readonly listeners = new Map<StoreTopic, Set<(reason: ChangeReason) => void>>();
  private cancelResync: (() => void) | undefined;
  private stopListening: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly session: StoreSession,
    private readonly resyncIntervalMs: number,
    private readonly deps: { timer: Schedule; logger: Logger },
  ) {}

  start(): void {
    this.stopListening = this.session.listen({
      up: () => this.emitAll('reconnect'),
      notification: (payload) => {
        if ((STORE_TOPICS as readonly string[]).includes(payload)) this.emit(payload as StoreTopic, 'notify');
      },
    });
    this.scheduleResync();
  }

  subscribe(topic: StoreTopic, listener: (reason: ChangeReason) => void): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.cancelResync?.();
    this.stopListening?.();
  }

  private scheduleResync(): void {
    if (this.closed || !Number.isFinite(this.resyncIntervalMs)) return;
    this.cancelResync = this.deps.timer(this.resyncIntervalMs, () => {
      // While the session is down a re-read would fail; its return brings a 'reconnect' re-read.
      if (this.session.isUp) this.emitAll('periodic');
      this.scheduleResync();
    });
  }

  private emitAll(reason: ChangeReason): void {
    for (const topic of STORE_TOPICS) this.emit(topic, reason);
  }

  private emit(topic: StoreTopic, reason: ChangeReason): void {
    for (const listener of this.listeners.get(topic) ?? []) {
      try {
        listener(reason);
      } catch (err) {
        this.deps.logger.warn({ topic, err: (err as Error).message }, 'a change feed subscriber failed');
      }
    }
  }
}
