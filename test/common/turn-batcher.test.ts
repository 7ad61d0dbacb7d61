import t from 'tap';
import { TurnBatcher } from '../../src/common/turn-batcher.js';

t.test('calls of one turn run as one batch, capped, the rest in later turns', async (t) => {
  const batches: number[][] = [];
  const b = new TurnBatcher<number, string>(async (xs) => { batches.push(xs); return xs.map((x) => `r${x}`); }, 4);
  const all = await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(i)));
  t.same(all, Array.from({ length: 10 }, (_, i) => `r${i}`), 'each caller gets its own answer');
  t.same(batches, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  t.equal(await b.submit(42), 'r42', 'a lone call later is a batch of one');
  t.same(batches.at(-1), [42]);
});

t.test('an Error result fails its caller only; a thrown batch fails them all', async (t) => {
  const b = new TurnBatcher<number, number>(async (xs) => xs.map((x) => (x === 2 ? new Error('two is bad') : x * 10)), 8);
  const settled = await Promise.allSettled([1, 2, 3].map((x) => b.submit(x)));
  t.same(settled.map((s) => s.status), ['fulfilled', 'rejected', 'fulfilled']);
  t.match((settled[1] as PromiseRejectedResult).reason, { message: 'two is bad' });
  const broken = new TurnBatcher<number, number>(async () => { throw new Error('no batch today'); }, 8);
  const both = await Promise.allSettled([broken.submit(1), broken.submit(2)]);
  t.same(both.map((s) => s.status), ['rejected', 'rejected']);
  const short = new TurnBatcher<number, number>(async () => [1], 8);
  const answers = await Promise.allSettled([short.submit(1), short.submit(2)]);
  t.same(answers.map((s) => s.status), ['fulfilled', 'rejected'], 'an input the batch did not answer is rejected, not left hanging');
});

const checkPhase = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('a full batch runs at once; a partial one waits for the check phase', async (t) => {
  const batches: number[][] = [];
  const b = new TurnBatcher<number, number>(async (xs) => { batches.push(xs); return xs; }, 4);
  void b.submit(1);
  void b.submit(2);
  await Promise.resolve();
  t.same(batches, [], 'two of four: nothing runs before the check phase');
  await checkPhase();
  t.same(batches, [[1, 2]]);

  // Requests trickling in through promise chains (as streams' first requests do inside one long
  // poll phase): each full batch runs as soon as it fills, not when the poll phase ends.
  const feed = async (x: number): Promise<void> => {
    for (let hop = 0; hop < x; hop++) await Promise.resolve();
    void b.submit(x);
  };
  await Promise.all(Array.from({ length: 9 }, (_, i) => feed(10 + i)));
  t.same(batches.slice(1), [[10, 11, 12, 13], [14, 15, 16, 17]], 'two full batches ran inside the microtask checkpoint');
  await checkPhase();
  t.same(batches.slice(3), [[18]], 'the remainder at the check phase');
});

t.test('a burst queued in one go runs one batch at once and the rest one per turn', async (t) => {
  const batches: number[][] = [];
  const b = new TurnBatcher<number, number>(async (xs) => { batches.push(xs); return xs; }, 4);
  const all = Array.from({ length: 10 }, (_, i) => b.submit(i));
  await Promise.resolve();
  t.same(batches, [[0, 1, 2, 3]]);
  await checkPhase();
  t.same(batches.length, 2, 'one more batch per turn of the loop, with I/O between');
  t.same(await Promise.all(all), Array.from({ length: 10 }, (_, i) => i));
  t.same(batches, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
});
