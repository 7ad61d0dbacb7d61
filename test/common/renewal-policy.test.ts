import t from 'tap';
import { backoffDelay, retryDelay, rotationDueAt, validateRotationPolicy } from '../../src/common/renewal-policy.js';
import { AGENT_BACKOFF } from '../../src/common/defaults.js';

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

t.test('backoff: doubles from the initial delay up to the cap; the jitter only shortens a wait (half to all of it)', async (t) => {
  const policy = { initialMs: 1000, maxMs: 60_000 };
  t.same([0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, policy, 0.999999)), [999, 1999, 3999, 7999, 15_999, 31_999, 59_999, 59_999]);
  t.same([0, 1, 2, 3].map((a) => backoffDelay(a, policy, 0.5)), [750, 1500, 3000, 6000], 'a middle draw');
  t.equal(backoffDelay(0, policy, 0), 500, 'low end of the jitter: half');
  t.equal(backoffDelay(1_000, policy, 0.5), 45_000, 'a huge attempt count stays under the cap');
  t.equal(backoffDelay(-3, policy, 0.5), 750, 'a negative attempt counts as the first');
  t.equal(backoffDelay(0, { initialMs: 0, maxMs: 0 }, 0.5), 1, 'never 0 ms');
});

t.test('agent defaults: no wait ever exceeds 4 s, whatever the attempt count or the draw', async (t) => {
  for (const attempt of [0, 1, 2, 3, 4, 5, 10, 100, 1e9]) {
    for (const random of [0, 0.25, 0.5, 0.999999]) {
      const d = retryDelay(attempt, AGENT_BACKOFF, random, 0, undefined);
      if (!(d >= 1 && d <= 4000)) t.fail(`attempt ${attempt}, draw ${random}: ${d} ms`);
    }
  }
  t.equal(AGENT_BACKOFF.maxMs, 4000);
  t.same([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, AGENT_BACKOFF, 0.999999)), [249, 499, 999, 1999, 3999, 3999], 'from 250 ms to the 4 s cap in five steps');
});

const retryRows: Array<{ name: string; attempt: number; now: number; notAfter: number | undefined; expect: number }> = [
  { name: 'no certificate yet: plain backoff', attempt: 6, now: 0, notAfter: undefined, expect: 45_000 },
  { name: 'plenty of time left: plain backoff', attempt: 6, now: 0, notAfter: 3_600_000, expect: 45_000 },
  { name: '100 s left: at most a tenth of it', attempt: 6, now: 0, notAfter: 100_000, expect: 10_000 },
  { name: '10 s left: 1 s', attempt: 6, now: 0, notAfter: 10_000, expect: 1_000 },
  { name: '5 s left: floored at the initial delay', attempt: 6, now: 0, notAfter: 5_000, expect: 1_000 },
  { name: 'early attempts are shorter than the expiry cap anyway', attempt: 0, now: 0, notAfter: 100_000, expect: 750 },
  { name: 'already expired: plain backoff (the token takes over)', attempt: 6, now: 50_000, notAfter: 10_000, expect: 45_000 },
];

for (const r of retryRows) {
  t.test(`retry: ${r.name}`, async (t) => {
    t.equal(retryDelay(r.attempt, { initialMs: 1000, maxMs: 60_000 }, 0.5, r.now, r.notAfter), r.expect);
  });
}

t.test('retry: the waits shrink as expiry nears, so attempts come closer together', async (t) => {
  const policy = AGENT_BACKOFF;
  const notAfter = 20_000;
  let now = 0;
  const waits: number[] = [];
  for (let attempt = 0; now < notAfter && attempt < 100; attempt++) {
    const d = retryDelay(attempt, policy, 0.999999, now, notAfter);
    waits.push(d);
    now += d;
  }
  t.ok(waits.length > 8, `${waits.length} attempts before a 20 s certificate expires: ${waits.join(', ')}`);
  const late = waits.slice(-3);
  t.ok(late.every((w) => w <= 250), `the last waits are at the floor: ${late.join(', ')}`);
});
