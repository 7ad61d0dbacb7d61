import t from 'tap';
import { changedTrustDomains, foreignBundlePush } from '../../../src/xds/push-plan/foreign-bundles.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

const view = (entries: Record<string, string[]>) => new Map(Object.entries(entries).map(([td, rootsPem]) => [td, { rootsPem }]));

t.test('a foreign bundle change pushes secrets; a new sequence with the same roots pushes nothing', async (t) => {
  const before = view({ 'west.example': ['A'], 'north.example': ['N'] });
  t.same(changedTrustDomains(before, view({ 'west.example': ['A', 'B'], 'north.example': ['N'] })), ['west.example'], 'a new root');
  t.same(changedTrustDomains(before, view({ 'west.example': ['A'] })), ['north.example'], 'a trust domain no longer federated');
  t.same(changedTrustDomains(before, view({ 'west.example': ['A'], 'north.example': ['N'], 'south.example': ['S'] })), ['south.example'], 'a new one');
  t.same(foreignBundlePush(before, view({ 'west.example': ['B'], 'north.example': ['N'] })), { typeUrls: [TypeUrl.Secret], reason: 'federated-bundle' });
  t.equal(foreignBundlePush(before, view({ 'north.example': ['N'], 'west.example': ['A'] })), undefined, 'same roots: no push');
});
