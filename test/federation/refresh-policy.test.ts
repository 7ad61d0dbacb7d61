/** The pure parts of refreshing: when to poll again, and whether a fetched bundle replaces the held one. */
import t from 'tap';
import {
  DEFAULT_REFRESH_MS, MAX_REFRESH_MS, MIN_REFRESH_MS, nextRefreshDelayMs, refreshIntervalMs, retryDelayMs, RETRY_BASE_MS, RETRY_CAP_MS,
} from '../../src/federation/refresh-schedule.js';
import { supersedes } from '../../src/federation/bundle-supersession.js';
import type { ForeignBundle } from '../../src/federation/bundle-document.js';

t.test('the poll interval follows spiffe_refresh_hint between a floor of 1 minute and a ceiling of 1 hour', async (t) => {
  const rows: [number | undefined, number][] = [
    [undefined, DEFAULT_REFRESH_MS], // no hint: about five minutes (SPIFFE bundle spec §6.1)
    [0, DEFAULT_REFRESH_MS],
    [1, MIN_REFRESH_MS], // a hostile or mistaken hint cannot make meshd hammer the endpoint
    [60, 60_000],
    [300, 300_000],
    [3600, 3_600_000],
    [2_419_200, MAX_REFRESH_MS], // the spec's own example: 28 days
    [Number.MAX_SAFE_INTEGER, MAX_REFRESH_MS],
  ];
  for (const [hint, ms] of rows) t.equal(refreshIntervalMs(hint), ms, `hint ${hint}`);
  t.equal(DEFAULT_REFRESH_MS, 300_000);
});

t.test('regular polls are jittered ±10%', async (t) => {
  t.equal(nextRefreshDelayMs(300_000, 0), 270_000);
  t.equal(nextRefreshDelayMs(300_000, 0.5), 300_000);
  t.equal(nextRefreshDelayMs(300_000, 0.999999), 330_000);
});

t.test('retries back off exponentially from 5 s, with equal jitter, capped at min(5 min, the interval)', async (t) => {
  const low = (n: number, interval = 3_600_000): number => retryDelayMs(n, interval, 0);
  const high = (n: number, interval = 3_600_000): number => retryDelayMs(n, interval, 0.999999);
  t.same([1, 2, 3, 4, 5, 6, 7, 8, 20, 10_000].map((n) => high(n)), [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000]);
  t.same([1, 2, 3].map((n) => low(n)), [2_500, 5_000, 10_000], 'never less than half the step');
  t.equal(high(10, 60_000), 60_000, 'never longer than the refresh interval itself');
  t.equal(RETRY_BASE_MS, 5_000);
  t.equal(RETRY_CAP_MS, 300_000);
});

const PEM = (n: number): string => `-----BEGIN CERTIFICATE-----\nroot${n}\n-----END CERTIFICATE-----\n`;
function fetched(roots: number[], sequence?: bigint): ForeignBundle {
  return { trustDomain: 'west.example', rootsPem: roots.map(PEM), skipped: [], ...(sequence !== undefined ? { sequence } : {}) };
}

t.test('supersession by spiffe_sequence', async (t) => {
  const held = (roots: number[], sequence?: bigint) => ({ rootsPem: roots.map(PEM), ...(sequence !== undefined ? { sequence } : {}) });
  const rows: Array<[string, ReturnType<typeof held> | undefined, ForeignBundle, string]> = [
    ['nothing held: taken', undefined, fetched([1], 1n), 'changed'],
    ['a higher sequence with new roots: taken', held([1], 1n), fetched([1, 2], 2n), 'changed'],
    ['a higher sequence, the same roots: taken (its sequence moves on)', held([1], 1n), fetched([1], 2n), 'changed'],
    ['the same sequence and roots: confirmed', held([1, 2], 2n), fetched([2, 1], 2n), 'unchanged'],
    ['a lower sequence with other roots: an old bundle again', held([1, 2], 2n), fetched([1], 1n), 'refused:sequence-regressed'],
    ['a lower sequence, the same roots: confirmed, nothing changes', held([1], 5n), fetched([1], 1n), 'unchanged'],
    ['the same sequence with other roots: breaks "MUST change"', held([1], 3n), fetched([2], 3n), 'refused:sequence-reused'],
    ['no sequences: the latest answer wins', held([1]), fetched([2]), 'changed'],
    ['no sequences, the same roots: confirmed', held([1]), fetched([1]), 'unchanged'],
    ['the endpoint stopped sending a sequence: taken', held([1], 4n), fetched([2]), 'changed'],
    ['64-bit sequences compare exactly', held([1], 18446744073709551614n), fetched([2], 18446744073709551615n), 'changed'],
  ];
  for (const [name, h, f, want] of rows) {
    const d = supersedes(h, f);
    t.equal(d.kind === 'refused' ? `refused:${d.reason}` : d.kind, want, name);
  }
});
