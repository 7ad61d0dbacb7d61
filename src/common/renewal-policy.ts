/**
 * When to re-issue a workload SVID: after `fraction` of its lifetime, moved by a small
 * random jitter so a fleet that started together does not rotate together.
 * (istio-agent renews at 50% ± 1%; SPIRE at half-life ± 10%; meshd defaults to 80% ± 2%
 * of the lifetime as the issue asks.) Pure: the random draw is passed in.
 */
export interface RotationPolicy {
  /** 0 < fraction < 1 */
  fraction: number;
  /** Jitter as a fraction of the lifetime, applied ± (default 0.02). */
  jitter: number;
}

export const DEFAULT_ROTATION: RotationPolicy = { fraction: 0.8, jitter: 0.02 };

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
