/**
 * When to renew a certificate, and when to try again after a failed renewal. Pure: the
 * random draws are passed in; RenewalTimer (renewal-timer.ts) does the waiting.
 */

/**
 * Renew after `fraction` of the lifetime, moved by a small random jitter so a fleet that
 * started together does not renew together. istio-agent renews at 50% ± 1% of the lifetime
 * (SECRET_GRACE_PERIOD_RATIO 0.5, SECRET_GRACE_PERIOD_RATIO_JITTER 0.01); SPIRE's agent at
 * half-life; meshd's SDS at 80% ± 2% by default (defaults.ts).
 */
export interface RotationPolicy {
  /** 0 < fraction < 1 */
  fraction: number;
  /** Jitter as a fraction of the lifetime, applied ±. */
  jitter: number;
}

/** @param random a draw in [0, 1) */
export function rotationDueAt(notBeforeMs: number, notAfterMs: number, policy: RotationPolicy, random: number): number {
  const lifetime = notAfterMs - notBeforeMs;
  const jittered = policy.fraction + (random * 2 - 1) * policy.jitter;
  const f = Math.min(0.95, Math.max(0.05, jittered));
  return notBeforeMs + Math.floor(lifetime * f);
}

export function validateRotationPolicy(policy: RotationPolicy): string | undefined {
  if (!(policy.fraction > 0 && policy.fraction < 1)) return `rotation fraction must be between 0 and 1 (exclusive), got ${policy.fraction}`;
  if (!(policy.jitter >= 0 && policy.jitter < Math.min(policy.fraction, 1 - policy.fraction))) {
    return `rotation jitter ${policy.jitter} must be ≥ 0 and smaller than the distance of the fraction to 0 and 1`;
  }
  return undefined;
}

/**
 * Exponential backoff for retries against meshd: initial × 2^attempt, capped, with ±20 %
 * jitter so agents that lost meshd together do not return together. (istio-agent retries
 * CSRs with exponential backoff from 1 s.)
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

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
