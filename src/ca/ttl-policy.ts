import { formatDuration } from '../common/duration.js';
import { CaError } from './errors.js';

export interface TtlPolicy {
  /** Used when the caller asks for nothing (or 0): Istio's DEFAULT_WORKLOAD_CERT_TTL, 24h. */
  defaultTtlMs: number;
  /** Istio's MAX_WORKLOAD_CERT_TTL, 90 days. */
  maxTtlMs: number;
}

/**
 * The lifetime to issue for. Above the maximum is an error, not a clamp: istiod answers
 * InvalidArgument "requested TTL ... is greater than the max allowed TTL" (ca.go sign),
 * so a misconfigured client finds out instead of silently getting less.
 */
export function resolveTtl(requestedMs: number | undefined, policy: TtlPolicy): number {
  if (requestedMs === undefined || requestedMs === 0) return policy.defaultTtlMs;
  if (!Number.isFinite(requestedMs) || requestedMs < 0) {
    throw new CaError('TTL_ERROR', `requested TTL ${String(requestedMs)} ms is not a positive duration`);
  }
  if (requestedMs < 1000) throw new CaError('TTL_ERROR', `requested TTL ${requestedMs}ms is shorter than one second`);
  if (requestedMs > policy.maxTtlMs) {
    throw new CaError('TTL_ERROR', `requested TTL ${formatDuration(requestedMs)} is greater than the max allowed TTL ${formatDuration(policy.maxTtlMs)}`);
  }
  return requestedMs;
}
