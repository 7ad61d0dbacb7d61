import t from 'tap';
import { backoffDelay, retryDelay, rotationDueAt, validateRotationPolicy } from '../../src/common/renewal-policy.js';

const H = 3_600_000;
const rows: Array<{ name: string; fraction: number; jitter: number; random: number; expectHours: number }> = [
  { name: 'default 0.8 of 24h, no jitter draw', fraction: 0.8, jitter: 0.02, random: 0.5, expectHours: 19.2 },
  { name: 'jitter low end', fraction: 0.8, jitter: 0.02, random: 0, expectHours: 24 * 0.78 },
  { name: 'jitter high end (just under)', fraction: 0.8, jitter: 0.02, random: 0.999999, expectHours: 24 * 0.82 },
  { name: 'istio-agent style half life', fraction: 0.5, jitter: 0, random: 0.3, expectHours: 12 },
];

for (const r of rows) {
  t.test(r.name, async (t) => {
    const due = rotationDueAt(0, 24 * H, { fraction: r.fraction, jitter: r.jitter }, r.random);
    t.ok(Math.abs(due - r.expectHours * H) < 100, `${due / H}h ≈ ${r.expectHours}h`);
  });
}

t.test('rotation never lands before 5% or after 95% of the lifetime', async (t) => {
  t.equal(rotationDueAt(0, 100_000, { fraction: 0.99, jitter: 0 }, 0.5), 95_000);
  t.equal(rotationDueAt(0, 100_000, { fraction: 0.01, jitter: 0 }, 0.5), 5_000);
});

t.test('policies are validated', async (t) => {
  t.equal(validateRotationPolicy({ fraction: 0.8, jitter: 0.02 }), undefined);
  t.match(validateRotationPolicy({ fraction: 1.2, jitter: 0 }), /between 0 and 1/);
  t.match(validateRotationPolicy({ fraction: 0.9, jitter: 0.2 }), /jitter/);
});

t.test('backoff: doubles from the initial delay up to the cap, jittered ±20 %', async (t) => {
  const policy = { initialMs: 1000, maxMs: 60_000 };
  t.same([0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, policy, 0.5)), [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
  t.equal(backoffDelay(0, policy, 0), 800, 'low end of the jitter');
  t.equal(backoffDelay(0, policy, 0.999999), 1200, 'high end of the jitter');
  t.equal(backoffDelay(1_000, policy, 0.5), 60_000, 'a huge attempt count stays at the cap');
  t.equal(backoffDelay(0, { initialMs: 0, maxMs: 0 }, 0.5), 1, 'never 0 ms');
});

t.test('retry: the backoff, but the last attempt lands at 90 % of the time the certificate has left', async (t) => {
  const policy = { initialMs: 1000, maxMs: 60_000 };
  t.equal(retryDelay(6, policy, 0.5, 0, undefined), 60_000, 'no certificate yet: plain backoff');
  t.equal(retryDelay(6, policy, 0.5, 0, 100_000), 60_000, 'plenty of time left: plain backoff');
  t.equal(retryDelay(6, policy, 0.5, 0, 10_000), 9_000, 'shortly before expiry: 90 % of the time left');
  t.equal(retryDelay(6, policy, 0.5, 50_000, 10_000), 60_000, 'already expired: plain backoff');
});
