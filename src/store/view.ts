import type { Logger } from '../common/logger.js';
import type { ChangeFeed, ChangeReason, StoreTopic } from './change-feed.js';
import { describeCause } from './errors.js';

/**
 * What a replica last read of one part of the store, kept in memory and refreshed when the
 * change feed calls. While the store is unreachable a refresh fails and the last value stays:
 * callers keep serving from `current`.
 *
 * Refreshes never overlap: calls that arrive during a load are folded into one more load
 * after it. Listeners hear only of values whose version differs from the last one.
 */
export interface StoreViewOptions<T> {
  feed: ChangeFeed;
  topic: StoreTopic;
  load: () => Promise<T>;
  /** Equal versions mean equal content: no update is announced. */
  versionOf: (value: T) => string | number;
  logger: Logger;
}

export class StoreView<T> {
  private value: T | undefined;
  private version: string | number | undefined;
  /** Set and cleared synchronously with the check for pending work, so no call falls between. */
  private running = false;
  private loading: Promise<void> = Promise.resolve();
  private pending: ChangeReason | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly listeners = new Set<(value: T, reason: ChangeReason) => void>();

  constructor(private readonly options: StoreViewOptions<T>) {}

  /** Reads once (a failure is thrown: there is nothing to serve yet), then follows the feed. */
  async start(): Promise<T> {
    const value = await this.options.load();
    this.value = value;
    this.version = this.options.versionOf(value);
    this.unsubscribe ??= this.options.feed.subscribe(this.options.topic, (reason) => this.refresh(reason));
    return value;
  }

  /** The last value read; undefined only before start() succeeded. */
  get current(): T | undefined {
    return this.value;
  }

  onUpdate(listener: (value: T, reason: ChangeReason) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Loads again now (or once more after the load under way). */
  refresh(reason: ChangeReason): Promise<void> {
    if (this.running) {
      this.pending = reason;
      return this.loading;
    }
    this.running = true;
    this.loading = this.loadLoop(reason);
    return this.loading;
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.listeners.clear();
  }

  private async loadLoop(first: ChangeReason): Promise<void> {
    for (let reason: ChangeReason | undefined = first; reason !== undefined; reason = this.takePending()) {
      let value: T;
      try {
        value = await this.options.load();
      } catch (err) {
        this.options.logger.warn({ topic: this.options.topic, reason, err: describeCause(err) }, 'cannot re-read the store; serving what was read before');
        continue;
      }
      const version = this.options.versionOf(value);
      if (version === this.version) continue;
      this.value = value;
      this.version = version;
      for (const listener of this.listeners) {
        try {
          listener(value, reason);
        } catch (err) {
          this.options.logger.error({ topic: this.options.topic, err: describeCause(err) }, 'a store view listener failed');
        }
      }
    }
  }

  /** The reason for one more load, or undefined, which ends the run in the same step. */
  private takePending(): ChangeReason | undefined {
    const reason = this.pending;
    this.pending = undefined;
    if (reason === undefined) this.running = false;
    return reason;
  }
}
