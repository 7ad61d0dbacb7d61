/**
 * Timers passed in, so tests move time by hand: `schedule(ms, fn)` runs `fn` once after
 * `ms` and returns a function that cancels it.
 */
export type Scheduler = (ms: number, fn: () => void) => () => void;

/** setTimeout holds at most 2^31-1 ms (~24.8 days); longer waits are re-armed in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Real timers, unref'd: a pending refresh never keeps the process alive. */
export const realScheduler: Scheduler = (ms, fn) => {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = (left: number): void => {
    const step = Math.min(Math.max(0, left), MAX_TIMEOUT_MS);
    timer = setTimeout(() => {
      if (cancelled) return;
      if (left > step) arm(left - step);
      else fn();
    }, step);
    timer.unref();
  };
  arm(ms);
  return () => {
    cancelled = true;
    if (timer) clearTimeout(timer);
  };
};
