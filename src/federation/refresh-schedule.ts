/**
 * When to fetch a foreign bundle again (pure maths; the random draw is passed in).
 *
 * SPIFFE Federation §4.1: poll every spiffe_refresh_hint, or about every five minutes when the
 * bundle has none. The hint comes from the foreign side, so it is bounded:
 * - floor 1 minute, SPIRE's bundleutil.MinimumRefreshHint: a hint of 1 s (a typo, or a hostile
 *   endpoint) must not turn meshd into a load generator;
 * - ceiling 1 hour: the spec's own example hint is 28 days, and polling that rarely would
 *   leave a revoked root trusted for a month and let a broken endpoint go unnoticed for as
 *   long. A poll is one small GET, so an hour costs nothing; the publisher adds new roots
 *   3-5 hints ahead (Federation §4.1), so polling more often than the hint is always safe.
 * Each wait is jittered by ±10% so several meshd replicas do not poll in lockstep.
 */

export const MIN_REFRESH_MS = 60_000;
export const MAX_REFRESH_MS = 3_600_000;
/** SPIFFE Trust Domain and Bundle §6.1, and SPIRE's defaultRefreshInterval. */
export const DEFAULT_REFRESH_MS = 300_000;
/**
 * After a failure SPIFFE Federation §6.2 asks to retry at the next interval rather than immediately or
 * aggressively. meshd retries sooner, but gently: from 5 s, doubling per consecutive failure,
 * never beyond min(5 min, the interval). One lost poll (a restart of the foreign side) then
 * costs seconds, not a whole interval of staleness, while an endpoint that stays down sees at
 * most one request per 5 minutes from each meshd.
 */
export const RETRY_BASE_MS = 5_000;
/** Retries never wait longer than this (nor longer than the refresh interval itself). */
export const RETRY_CAP_MS = 300_000;
const JITTER = 0.1;

/** The poll interval for a bundle with this spiffe_refresh_hint (seconds), bounded. */
export function refreshIntervalMs(hintSeconds: number | undefined): number {
  if (hintSeconds === undefined || hintSeconds <= 0) return DEFAULT_REFRESH_MS;
  return Math.min(MAX_REFRESH_MS, Math.max(MIN_REFRESH_MS, hintSeconds * 1000));
}

/** The wait before the next regular poll; `random` in [0, 1). */
export function nextRefreshDelayMs(intervalMs: number, random: number): number {
  return Math.round(intervalMs * (1 - JITTER + 2 * JITTER * random));
}

/**
 * The wait after `failures` consecutive failed attempts (1 = the first): exponential from
 * RETRY_BASE_MS, capped at min(RETRY_CAP_MS, intervalMs), with "equal jitter" (half fixed,
 * half random) so retries spread out yet never shrink to nothing.
 */
export function retryDelayMs(failures: number, intervalMs: number, random: number): number {
  const cap = Math.min(RETRY_CAP_MS, intervalMs);
  const exp = Math.min(cap, RETRY_BASE_MS * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.round(exp / 2 + (exp / 2) * random);
}
