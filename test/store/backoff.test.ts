import t from 'tap';
import { reconnectDelayMs, uniform } from '../../src/store/backoff.js';

const fixed = (value: number) => (size: number): Buffer => {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(value, 0);
  return b;
};

t.test('reconnect delays double from the base, stop at the cap, and are jittered over the upper half', async (t) => {
  const options = { baseMs: 200, capMs: 5_000 };
  const low = fixed(0);
  const high = fixed(0xffffffff);
  t.same([0, 1, 2, 3, 4, 5, 6, 40].map((a) => reconnectDelayMs(a, options, low)), [100, 200, 400, 800, 1600, 2500, 2500, 2500], 'lowest draw: half the step');
  t.same([0, 1, 2, 3, 4, 5, 6, 40].map((a) => reconnectDelayMs(a, options, high)), [200, 400, 800, 1600, 3200, 5000, 5000, 5000], 'highest draw: the whole step, never past the cap');
  t.equal(reconnectDelayMs(2, options, fixed(0x80000000)), 600, 'a middle draw lands in the middle');
});

t.test('uniform draws lie in [0, 1)', async (t) => {
  t.equal(uniform(fixed(0)), 0);
  t.ok(uniform(fixed(0xffffffff)) < 1);
});
