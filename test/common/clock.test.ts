import t from 'tap';
import { ManualClock, systemClock } from '../../src/common/clock.js';

t.test('ManualClock: moving forward runs the timers due by then, in due order, each at its own time', async (t) => {
  const clock = new ManualClock(1_000);
  const ran: Array<[string, number]> = [];
  clock.timer(300, () => ran.push(['c', clock.now()]));
  clock.timer(100, () => ran.push(['a', clock.now()]));
  clock.timer(200, () => ran.push(['b', clock.now()]));
  clock.timer(500, () => ran.push(['late', clock.now()]));
  clock.advance(300);
  t.same(ran, [['a', 1_100], ['b', 1_200], ['c', 1_300]], 'due order, the clock at each due time');
  t.equal(clock.now(), 1_300);
  t.same(clock.timerDelays(), [200], 'the later timer still waits');
  clock.advance(199);
  t.equal(ran.length, 3, 'not before its time');
  clock.advance(1);
  t.same(ran.at(-1), ['late', 1_500]);
  t.same(clock.timerDelays(), []);
});

t.test('ManualClock: timers due at the same time run in the order they were set', async (t) => {
  const clock = new ManualClock(0);
  const ran: string[] = [];
  for (const name of ['first', 'second', 'third']) clock.timer(50, () => ran.push(name));
  clock.advance(50);
  t.same(ran, ['first', 'second', 'third']);
});

t.test('ManualClock: a timer set by a callback runs in the same move when due by its end', async (t) => {
  const clock = new ManualClock(0);
  const ran: number[] = [];
  const every = (ms: number): void => { clock.timer(ms, () => { ran.push(clock.now()); every(ms); }); };
  every(100);
  clock.timer(0, () => ran.push(-1));
  clock.advance(350);
  t.same(ran, [-1, 100, 200, 300], 'the periodic timer re-armed itself three times; a 0 ms timer runs at once');
  t.same(clock.timerDelays(), [50]);
});

t.test('ManualClock: a cancelled timer never runs; set() backwards runs nothing', async (t) => {
  const clock = new ManualClock(10_000);
  let ran = 0;
  const cancel = clock.timer(10, () => { ran += 1; });
  clock.timer(20, () => { ran += 10; });
  cancel();
  cancel();
  clock.set(5_000);
  t.equal(ran, 0, 'moving back runs nothing');
  t.equal(clock.now(), 5_000);
  clock.set(10_020);
  t.equal(ran, 10, 'set() forward runs what fell due; the cancelled timer stays cancelled');
});

t.test('systemClock: a timer fires once, and a cancelled one never does', async (t) => {
  const fired: string[] = [];
  // The clock's timers are unref'd, as a server's should be: this handle keeps the test process up meanwhile.
  const keepAlive = setInterval(() => undefined, 1000);
  t.teardown(() => clearInterval(keepAlive));
  const cancel = systemClock.timer(0, () => fired.push('cancelled'));
  cancel();
  await new Promise<void>((resolve) => systemClock.timer(5, () => { fired.push('kept'); resolve(); }));
  // The cancelled timer was due first: had it fired, it would have done so before this one.
  t.same(fired, ['kept']);
});
