import type { Clock } from './clock.js';

/**
 * The one way meshd waits for a renewal or a periodic check: at most one pending wake-up on
 * the injected clock, replaced when armed again. What runs and when is the owner's policy
 * (renewal-policy.ts holds the maths); this holds only the waiting:
 *
 * - the SVID cache sweeps for due SVIDs every second;
 * - meshd's serving identity renews at its rotation point, retrying after a failure;
 * - `meshd agent` renews at its rotation point, retrying with backoff;
 * - the CA re-reads its journal and checks root rotation every refresh interval.
 *
 * With `everyMs`, the timer arms itself again that long after each run has finished (a
 * promise settled), so a slow run never overlaps the next. Arming, cancelling or stopping
 * while a run is under way replaces that follow-up.
 */
export interface RenewalTimerOptions {
  /** Run again this long after each run finished; unset: once per arming. */
  everyMs?: number;
}

export class RenewalTimer {
  private cancel: (() => void) | undefined;
  private due: number | undefined;
  /** Bumped by every arm/cancel/stop: a run's periodic follow-up only arms if nothing replaced it. */
  private generation = 0;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly run: () => void | Promise<unknown>,
    private readonly options: RenewalTimerOptions = {},
  ) {}

  /** Wakes `ms` from now (at once for 0 or less), replacing any pending wake-up. Nothing after stop(). */
  in(ms: number): void {
    if (this.stopped) return;
    this.clear();
    const generation = this.generation;
    this.due = this.clock.now() + Math.max(0, ms);
    this.cancel = this.clock.timer(ms, () => this.fire(generation));
  }

  /** Wakes at clock time `at` (at once if that has passed). */
  at(at: number): void {
    this.in(at - this.clock.now());
  }

  /** Drops the pending wake-up (and a periodic follow-up); the timer may be armed again. */
  clear(): void {
    this.generation += 1;
    this.cancel?.();
    this.cancel = undefined;
    this.due = undefined;
  }

  /** Clears for good: arming again does nothing. */
  stop(): void {
    this.stopped = true;
    this.clear();
  }

  /** Clock time of the pending wake-up; undefined when none is pending. */
  get dueAt(): number | undefined {
    return this.due;
  }

  private fire(generation: number): void {
    this.cancel = undefined;
    this.due = undefined;
    const result = this.run();
    const every = this.options.everyMs;
    if (every === undefined) return;
    const again = (): void => {
      if (this.generation === generation) this.in(every);
    };
    if (result instanceof Promise) void result.finally(again);
    else again();
  }
}
