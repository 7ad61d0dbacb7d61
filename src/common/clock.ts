/**
 * Time is passed in, never read from globals: what time it is, and waking up later. Renewal,
 * rotation, expiry, retries and debouncing can then be driven by a clock the tests move (as
 * SPIRE tests its rotators with a mock clock).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Runs `fn` once, `ms` from now; returns a function that cancels it. A pending timer never
   * keeps the process alive on its own (a server is kept alive by its sockets).
   */
  timer(ms: number, fn: () => void): () => void;
}

/** setTimeout holds at most 2^31-1 ms (~24.8 days); a longer wait is re-armed in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Node's timers, unref'd, for any wait however long. */
function realTimer(ms: number, fn: () => void): () => void {
  let handle: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = (left: number): void => {
    const step = Math.min(Math.max(0, left), MAX_TIMEOUT_MS);
    handle = setTimeout(() => {
      if (cancelled) return;
      if (left > step) arm(left - step);
      else fn();
    }, step);
    handle.unref();
  };
  arm(ms);
  return () => {
    cancelled = true;
    if (handle) clearTimeout(handle);
  };
}

export const systemClock: Clock = { now: () => Date.now(), timer: realTimer };

interface ManualTimer {
  at: number;
  /** Arming order: timers due at the same time run in the order they were set. */
  seq: number;
  fn: () => void;
}

/**
 * A clock the tests move by hand. Moving it forward runs the timers that fall due, in order
 * of due time, each with the clock set to its due time; a timer set by one of them runs in
 * the same move if it is due by its end. Callbacks run synchronously inside advance()/set():
 * what they start asynchronously (a renewal over the network) finishes after.
 */
export class ManualClock implements Clock {
  private readonly pending = new Set<ManualTimer>();
  private seq = 0;

  constructor(private ms: number = Date.UTC(2026, 10, 22, 12, 0, 0)) {}

  now(): number {
    return this.ms;
  }

  timer(ms: number, fn: () => void): () => void {
    const t: ManualTimer = { at: this.ms + Math.max(0, ms), seq: this.seq++, fn };
    this.pending.add(t);
    return () => { this.pending.delete(t); };
  }

  /** Moves the clock forward by `ms`, running every timer due by then. */
  advance(ms: number): void {
    this.runUntil(this.ms + Math.max(0, ms));
  }

  /** Sets the time; moving forward runs the timers due by then, moving back runs none. */
  set(ms: number): void {
    if (ms > this.ms) this.runUntil(ms);
    else this.ms = ms;
  }

  /** Delays (from now) of the timers still pending, soonest first. */
  timerDelays(): number[] {
    return [...this.pending].map((t) => t.at - this.ms).sort((a, b) => a - b);
  }

  private runUntil(target: number): void {
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.pending) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.pending.delete(next);
      if (next.at > this.ms) this.ms = next.at;
      next.fn();
    }
    this.ms = target;
  }
}
