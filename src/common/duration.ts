/**
 * Durations in the Go form Istio and Envoy users write: "24h", "90d", "1h30m", "500ms", "15s".
 * "d" is accepted as 24h for convenience (istioctl does not, but operators write it).
 */
const UNIT_MS: Record<string, number> = {
  ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000,
};

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

export class DurationError extends Error {}

export function parseDuration(text: string): number {
  const input = text.trim();
  if (input === '') throw new DurationError('empty duration');
  if (/^\d+$/.test(input)) {
    throw new DurationError(`duration "${text}" has no unit (use ms, s, m, h or d, e.g. "24h")`);
  }
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < input.length) {
    const start = PART.lastIndex;
    const m = PART.exec(input);
    if (!m) throw new DurationError(`invalid duration "${text}" at "${input.slice(start)}" (expected e.g. "24h", "1h30m", "500ms")`);
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return Math.round(total);
}

/** The shortest readable form: 86400000 → "24h", 5400000 → "1h30m". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  const parts: string[] = [];
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    if (rest >= size) {
      const n = Math.floor(rest / size);
      parts.push(`${n}${unit}`);
      rest -= n * size;
    }
  }
  return sign + parts.join('');
}
