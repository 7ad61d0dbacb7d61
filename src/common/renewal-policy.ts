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
 * Exponential backoff for retries against meshd: initial × 2^attempt up to a cap. The jitter
 * only ever shortens the wait (a draw between half and all of it, the "equal jitter" of
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/), so the cap is a
 * bound on how long after meshd comes back an agent tries again, while agents that lost meshd
 * together still spread out. istio-agent retries CSRs with exponential backoff from 1 s.
 */
export interface BackoffPolicy {
  /** The first retry's delay; also the shortest wait the expiry rule below may shrink to. */
  initialMs: number;
  /** No wait is longer than this. */
  maxMs: number;
}

/** @param attempt 0 for the first retry; @param random a draw in [0, 1) */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: number): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.max(1, Math.floor(base * (0.5 + 0.5 * random)));
}

/**
 * When to try again after a failed renewal: the backoff, but never longer than a tenth of the
 * time the current certificate has left (not below initialMs), so the retries come closer
 * together as expiry nears and one that succeeds just before it still lands in time. Once the
 * certificate has expired (or there is none) it is the plain backoff: the agent then renews
 * with its token, as on first start.
 */
export function retryDelay(attempt: number, policy: BackoffPolicy, random: number, nowMs: number, notAfterMs: number | undefined): number {
  const delay = backoffDelay(attempt, policy, random);
  if (notAfterMs === undefined || notAfterMs <= nowMs) return delay;
  const nearExpiryCap = Math.max(policy.initialMs, Math.floor((notAfterMs - nowMs) / 10));
  return Math.max(1, Math.min(delay, nearExpiryCap));
}
