import t from 'tap';
import { PushQueue, type PushJob } from '../../../src/xds/core/push-queue.js';

t.test('pushes queued for the same connection coalesce into one job', async (t) => {
  const runs: Array<[string, PushJob]> = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = new PushQueue<string>(1, async (key, job) => { runs.push([key, job]); if (key === 'blocker') await gate; });
  const blocker = q.enqueue('blocker', undefined, 'x', 0);
  const p1 = q.enqueue('a', new Set(['lds']), 'config', 10);
  const p2 = q.enqueue('a', new Set(['cds']), 'secret', 5);
  release();
  await Promise.all([blocker, p1, p2]);
  t.equal(runs.length, 2, 'a ran once');
  const [, job] = runs[1];
  t.same([...job.types!].sort(), ['cds', 'lds']);
  t.same([...job.reasons].sort(), ['config', 'secret']);
  t.equal(job.queuedAt, 5, 'earliest queue time kept (convergence is measured from it)');
});

t.test('jobs of one push share its sets; merging another push into one job leaves the others alone', async (t) => {
  const runs = new Map<string, PushJob>();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = new PushQueue<string>(1, async (key, job) => { runs.set(key, job); if (key === 'blocker') await gate; });
  q.enqueueJob('blocker', { types: undefined, reasons: new Set(['x']), queuedAt: 0 });
  const types = new Set(['secret']);
  const reasons = new Set(['rotation']);
  let done = 0;
  for (const key of ['a', 'b']) q.enqueueJob(key, { types, reasons, queuedAt: 10 }, () => { done += 1; });
  q.enqueueJob('a', { types: new Set(['lds']), reasons: new Set(['config']), queuedAt: 20 }, () => { done += 1; });
  release();
  await q.idle();
  t.equal(done, 3, 'every push merged into a job is told when it ran');
  t.same([...runs.get('a')!.types!].sort(), ['lds', 'secret'], 'a got both pushes');
  t.same([...runs.get('a')!.reasons].sort(), ['config', 'rotation']);
  t.same([...runs.get('b')!.types!], ['secret'], 'b still has only its own push');
  t.same([...runs.get('b')!.reasons], ['rotation']);
  t.same([...types], ['secret'], 'the shared sets were not mutated');
  t.same([...reasons], ['rotation']);
});

t.test('concurrency is bounded', async (t) => {
  let running = 0; let peak = 0;
  const q = new PushQueue<number>(3, async () => {
    running += 1; peak = Math.max(peak, running);
    await new Promise((r) => setImmediate(r));
    running -= 1;
  });
  await Promise.all(Array.from({ length: 50 }, (_, i) => q.enqueue(i, undefined, 'r', 0)));
  t.equal(peak, 3);
  await q.idle();
  t.equal(q.queued, 0);
});

t.test('a failing job does not stop the queue; cancel releases waiters', async (t) => {
  const q = new PushQueue<string>(1, async (key) => { if (key === 'bad') throw new Error('boom'); });
  await q.enqueue('bad', undefined, 'r', 0);
  await q.enqueue('good', undefined, 'r', 0);
  t.pass('both resolved');
  let gateOpen!: () => void;
  const ran: string[] = [];
  const q2 = new PushQueue<string>(1, async (key) => {
    ran.push(key);
    if (key === 'first') await new Promise<void>((r) => (gateOpen = r));
  });
  const first = q2.enqueue('first', undefined, 'r', 0);
  const second = q2.enqueue('second', undefined, 'r', 0);
  q2.cancel('second');
  await second;
  t.same(ran, ['first'], 'the cancelled job\'s waiter was released while the first still ran');
  gateOpen();
  await first;
  await q2.idle();
  t.same(ran, ['first'], 'cancelled job resolved without running');
  t.equal(q2.queued, 0);
});
