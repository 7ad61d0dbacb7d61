import t from 'tap';
import { applyDeltaChanges, applySotwNames, EMPTY_SUBSCRIPTION, type Subscription } from '../../../src/xds/core/subscription.js';

const sub = (wildcard: boolean, names: string[], everNamed = names.length > 0 || false): Subscription => ({ wildcard, names: new Set(names), everNamed });

t.test('SotW subscriptions (xds_protocol, how the client specifies what resources to return)', async (t) => {
  const rows: Array<{ rule: string; prev: Subscription; names: string[]; wildcard: boolean; expect: string[]; added: string[]; removed: string[] }> = [
    { rule: 'legacy wildcard: empty list on a stream that never named anything', prev: EMPTY_SUBSCRIPTION, names: [], wildcard: true, expect: [], added: [], removed: [] },
    { rule: 'explicit wildcard "*"', prev: EMPTY_SUBSCRIPTION, names: ['*'], wildcard: true, expect: [], added: [], removed: [] },
    { rule: 'explicit wildcard plus names', prev: EMPTY_SUBSCRIPTION, names: ['*', 'a'], wildcard: true, expect: ['a'], added: ['a'], removed: [] },
    { rule: 'named resources', prev: EMPTY_SUBSCRIPTION, names: ['a', 'b'], wildcard: false, expect: ['a', 'b'], added: ['a', 'b'], removed: [] },
    { rule: 'after naming, an empty list unsubscribes from everything', prev: sub(false, ['a']), names: [], wildcard: false, expect: [], added: [], removed: ['a'] },
    { rule: 'after "*", an empty list is not a legacy wildcard', prev: sub(true, [], true), names: [], wildcard: false, expect: [], added: [], removed: [] },
    { rule: 'legacy wildcard persists while nothing is named', prev: sub(true, [], false), names: [], wildcard: true, expect: [], added: [], removed: [] },
    { rule: 'changing names reports added and removed', prev: sub(false, ['a', 'b']), names: ['b', 'c'], wildcard: false, expect: ['b', 'c'], added: ['c'], removed: ['a'] },
    { rule: 'narrowing a wildcard to names requests nothing new', prev: sub(true, [], false), names: ['a'], wildcard: false, expect: ['a'], added: [], removed: [] },
    { rule: 'wildcard covers names dropped from the explicit list', prev: sub(true, ['a'], true), names: ['*'], wildcard: true, expect: [], added: [], removed: [] },
  ];
  for (const row of rows) {
    const change = applySotwNames(row.prev, row.names);
    t.same({ wildcard: change.next.wildcard, names: [...change.next.names].sort(), added: change.added, removed: change.removed },
      { wildcard: row.wildcard, names: row.expect, added: row.added, removed: row.removed }, row.rule);
  }
});

t.test('delta subscriptions (xds_protocol, incremental xDS)', async (t) => {
  let c = applyDeltaChanges(EMPTY_SUBSCRIPTION, [], [], true);
  t.equal(c.next.wildcard, true, 'legacy wildcard: first request with nothing to subscribe');
  c = applyDeltaChanges(c.next, ['x'], [], false);
  t.equal(c.next.wildcard, true, 'naming a resource keeps the (now explicit) wildcard in delta');
  t.same(c.added, ['x']);
  c = applyDeltaChanges(c.next, [], ['*'], false);
  t.equal(c.next.wildcard, false, 'unsubscribing "*" ends the wildcard');
  t.equal(c.wildcardRemoved, true);
  c = applyDeltaChanges(EMPTY_SUBSCRIPTION, ['a', 'b'], [], true);
  t.equal(c.next.wildcard, false, 'first request with names is not a wildcard');
  c = applyDeltaChanges(c.next, ['a'], ['b', 'ghost'], false);
  t.same(c.added, ['a'], 're-subscribing a subscribed name counts as added (must be resent)');
  t.same(c.removed, ['b'], 'phantom unsubscribe of "ghost" is ignored');
  t.same([...c.next.names], ['a']);
});
