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
