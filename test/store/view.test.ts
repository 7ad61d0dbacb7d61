import t from 'tap';
import { silentLogger } from '../../src/common/logger.js';
import type { ChangeFeed, ChangeReason, StoreTopic } from '../../src/store/change-feed.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { StoreView } from '../../src/store/view.js';

/** A feed the test fires by hand. */
class HandFeed implements ChangeFeed {
  readonly listeners = new Map<StoreTopic, Set<(reason: ChangeReason) => void>>();
  subscribe(topic: StoreTopic, listener: (reason: ChangeReason) => void): () => void {
    const set = this.listeners.get(topic) ?? new Set();
    this.listeners.set(topic, set);
    set.add(listener);
    return () => set.delete(listener);
  }
  fire(topic: StoreTopic, reason: ChangeReason): void {
    for (const l of this.listeners.get(topic) ?? []) l(reason);
  }
}

/** A loader whose answers the test releases one at a time. */
function handLoader() {
  const waiting: Array<{ resolve: (v: { version: number }) => void; reject: (e: Error) => void }> = [];
  return {
    waiting,
    load: () => new Promise<{ version: number }>((resolve, reject) => { waiting.push({ resolve, reject }); }),
    async answer(v: number | Error): Promise<void> {
      while (waiting.length === 0) await new Promise((r) => setImmediate(r));
      const next = waiting.shift()!;
      if (v instanceof Error) next.reject(v);
      else next.resolve({ version: v });
    },
  };
}

t.test('a view re-reads on its topic, announces only new versions, and says why', async (t) => {
  const feed = new HandFeed();
  const loader = handLoader();
  const view = new StoreView({ feed, topic: 'config', load: loader.load, versionOf: (v) => v.version, logger: silentLogger() });
  const started = view.start();
  await loader.answer(1);
  t.same(await started, { version: 1 });
  const updates: Array<[number, ChangeReason]> = [];
  view.onUpdate((v, reason) => updates.push([v.version, reason]));
  feed.fire('ca', 'notify');
  t.equal(loader.waiting.length, 0, 'another topic does not re-read');
  feed.fire('config', 'notify');
  await loader.answer(1);
  feed.fire('config', 'periodic');
  await loader.answer(2);
  const reconnect = view.refresh('reconnect');
  await loader.answer(3);
  await reconnect;
  t.same(updates, [[2, 'periodic'], [3, 'reconnect']], 'version 1 again is not announced; versions 2 and 3 are, each with its reason');
  t.same(view.current, { version: 3 });
});

t.test('changes that arrive during a load fold into one more load', async (t) => {
  const feed = new HandFeed();
  const loader = handLoader();
  const view = new StoreView({ feed, topic: 'config', load: loader.load, versionOf: (v) => v.version, logger: silentLogger() });
  const started = view.start();
  await loader.answer(1);
  await started;
  feed.fire('config', 'notify');
  for (let i = 0; i < 10; i++) feed.fire('config', 'notify');
  await new Promise((r) => setImmediate(r));
  t.equal(loader.waiting.length, 1, 'one load under way');
  await loader.answer(2);
  await new Promise((r) => setImmediate(r));
  t.equal(loader.waiting.length, 1, 'then exactly one more');
  await loader.answer(3);
  await new Promise((r) => setImmediate(r));
  t.equal(loader.waiting.length, 0, 'and no more');
  t.same(view.current, { version: 3 });
});

t.test('a failed re-read keeps serving the last value', async (t) => {
  const feed = new HandFeed();
  const loader = handLoader();
  const view = new StoreView({ feed, topic: 'bundles', load: loader.load, versionOf: (v) => v.version, logger: silentLogger() });
  const started = view.start();
  await loader.answer(7);
  await started;
  const updates: number[] = [];
  view.onUpdate((v) => updates.push(v.version));
  const refresh = view.refresh('periodic');
  await loader.answer(new StoreUnavailableError('read', new Error('connect ECONNREFUSED 127.0.0.1:5432')));
  await refresh;
  t.same(view.current, { version: 7 }, 'still the last value');
  t.same(updates, []);
  const again = view.refresh('reconnect');
  await loader.answer(8);
  await again;
  t.same(updates, [8], 'the next good read is announced');
  view.close();
  feed.fire('bundles', 'notify');
  t.equal(loader.waiting.length, 0, 'a closed view no longer follows the feed');
});
