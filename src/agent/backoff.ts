/**
 * Exponential backoff for retries against meshd: initial × 2^attempt, capped, with ±20 %
 * jitter so agents that lost meshd together do not return together. Pure: the random draw is
 * passed in. (istio-agent retries CSRs with exponential backoff from 1 s.)
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 60_000 };

/** @param attempt 0 for the first retry; @param random a draw in [0, 1) */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: number): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random)));
}

/**
 * When to try again after a failure: the backoff, but never later than shortly before the
 * current certificate expires (a last attempt at 90 % of the time left), so a workload that can
 * still renew does.
 */
export function retryDelay(attempt: number, policy: BackoffPolicy, random: number, nowMs: number, notAfterMs: number | undefined): number {
  const delay = backoffDelay(attempt, policy, random);
  if (notAfterMs === undefined || notAfterMs <= nowMs) return delay;
  return Math.max(1, Math.min(delay, Math.floor((notAfterMs - nowMs) * 0.9)));
}
