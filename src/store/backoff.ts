import type { RandomBytes } from './key-ring.js';

/**
 * Delay before reconnect attempt `attempt` (0 for the first after a loss): exponential from
 * `baseMs`, capped at `capMs`, and jittered over its upper half ("equal jitter", AWS
 * Architecture Blog, "Exponential Backoff And Jitter") so replicas that lost the store
 * together do not reconnect in lockstep, yet none retries sooner than half the step.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 200, capMs: 5_000 };

export function reconnectDelayMs(attempt: number, options: BackoffOptions, random: RandomBytes): number {
  const step = Math.min(options.capMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + (step / 2) * uniform(random));
}

/** A uniform number in [0, 1) from 32 random bits. */
export function uniform(random: RandomBytes): number {
  return random(4).readUInt32BE(0) / 2 ** 32;
}
