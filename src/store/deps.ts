import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { RandomBytes } from './key-ring.js';

/** Runs `fn` once after `ms`; returns a function that cancels it (a Clock's timer). */
export type Schedule = Clock['timer'];

/** The system clock's timers (unref'd): a store's timers never keep a process alive on their own. */
export const unrefTimer: Schedule = systemClock.timer;

/** What every store part is given rather than reaching for globals. */
export interface StoreDeps {
  clock: Clock;
  random: RandomBytes;
  logger: Logger;
  registry: Registry;
  timer: Schedule;
}
