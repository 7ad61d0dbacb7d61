import t from 'tap';
import { ManualClock } from '../../src/common/clock.js';
import { RenewalTimer } from '../../src/common/renewal-timer.js';

t.test('one pending wake-up: arming again replaces it', async (t) => {
  const clock = new ManualClock(0);
  const runs: number[] = [];
  const timer = new RenewalTimer(clock, () => { runs.push(clock.now()); });
  timer.in(1_000);
  timer.at(400);
  t.equal(timer.dueAt, 400);
  t.same(clock.timerDelays(), [400], 'the first wake-up was dropped');
  clock.advance(2_000);
  t.same(runs, [400], 'ran once, at the later arming\'s time');
  t.equal(timer.dueAt, undefined, 'nothing pending after a one-shot run');
});

t.test('a due time already passed runs at once', async (t) => {
  const clock = new ManualClock(5_000);
  let ran = 0;
  const timer = new RenewalTimer(clock, () => { ran += 1; });
  timer.at(1_000);
  clock.advance(0);
  t.equal(ran, 1);
});

t.test('clear() drops the wake-up and the timer can be armed again; after stop() it cannot', async (t) => {
  const clock = new ManualClock(0);
  let ran = 0;
  const timer = new RenewalTimer(clock, () => { ran += 1; });
  timer.in(10);
  timer.clear();
  clock.advance(100);
  t.equal(ran, 0);
  timer.in(10);
  clock.advance(10);
  t.equal(ran, 1);
  timer.stop();
  timer.in(10);
  t.equal(timer.dueAt, undefined);
  t.same(clock.timerDelays(), []);
});

t.test('everyMs: runs again that long after each run has finished, never overlapping a slow run', async (t) => {
  const clock = new ManualClock(0);
  const starts: number[] = [];
  let finish: (() => void) | undefined;
  const timer = new RenewalTimer(clock, () => {
    starts.push(clock.now());
    return new Promise<void>((resolve) => { finish = resolve; });
  }, { everyMs: 100 });
  timer.in(100);
  clock.advance(1_000);
  t.same(starts, [100], 'the run has not finished: no second run');
  t.same(clock.timerDelays(), []);
  finish!();
  await Promise.resolve();
  await Promise.resolve();
  t.same(clock.timerDelays(), [100], 'armed again once it finished');
  clock.advance(100);
  t.same(starts, [100, 1_100]);
});

t.test('everyMs: a synchronous run re-arms itself; clearing during a run leaves no follow-up', async (t) => {
  const clock = new ManualClock(0);
  const runs: number[] = [];
  const timer = new RenewalTimer(clock, () => {
    runs.push(clock.now());
    if (runs.length === 3) timer.clear();
  }, { everyMs: 1_000 });
  timer.in(1_000);
  clock.advance(10_000);
  t.same(runs, [1_000, 2_000, 3_000], 'cleared by the third run: no fourth');
  t.same(clock.timerDelays(), []);
});
