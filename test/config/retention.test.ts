/**
 * "Nothing bad on disk ever empties a proxy's config": a failing document keeps the last good
 * version of its object; the rest of the config applies.
 */
import t from 'tap';
import { pa, snapshotOf, yaml } from './helpers.js';

const we = (name: string, address: string): string => yaml`
  apiVersion: networking.istio.io/v1
  kind: WorkloadEntry
  metadata: {name: ${name}, namespace: shop}
  spec:
    address: "${address}"
    labels: {app: web}
`;

t.test('an invalid edit keeps the previous version of that object, other edits apply', async (t) => {
  const v1 = snapshotOf({ 'shop.yaml': `${pa('shop', 'default', 'PERMISSIVE')}---\n${we('web-1', '10.0.0.1')}` });
  t.same(v1.messages, []);
  const v2 = snapshotOf({ 'shop.yaml': `${pa('shop', 'default', 'STRIKT')}---\n${we('web-1', '10.0.0.2')}` }, v1);
  t.equal(v2.version, 2);
  t.equal(v2.peerAuthentications[0]?.mode, 'PERMISSIVE', 'last good PeerAuthentication stays');
  t.equal(v2.peerAuthentications[0], v1.peerAuthentications[0], 'the very same object');
  t.equal(v2.workloadEntries[0]?.spec.address, '10.0.0.2', 'the valid edit in the same file applies');
  t.same(v2.messages.map((m) => [m.level, m.source.line, m.message]), [
    ['warning', 1, 'keeping the last good version of PeerAuthentication/shop/default (loaded from shop.yaml:1) until this document is fixed'],
    ['error', 8, 'unknown value "STRIKT" for spec.mtls.mode, expected one of UNSET, DISABLE, PERMISSIVE, STRICT'],
  ]);
  // Fixed on the next reload: the new version applies and the messages clear.
  const v3 = snapshotOf({ 'shop.yaml': `${pa('shop', 'default', 'STRICT')}---\n${we('web-1', '10.0.0.2')}` }, v2);
  t.equal(v3.peerAuthentications[0]?.mode, 'STRICT');
  t.same(v3.messages, []);
});

t.test('a failing object that never had a good version is simply absent', async (t) => {
  const s = snapshotOf({ 'a.yaml': pa('shop', 'default', 'NOPE') }, snapshotOf({}));
  t.equal(s.peerAuthentications.length, 0);
  t.equal(s.messages.filter((m) => m.level === 'error').length, 1);
});

t.test('a YAML syntax error keeps every object the file held before', async (t) => {
  const good = `${pa('shop', 'default', 'STRICT')}---\n${we('web-1', '10.0.0.1')}`;
  const v1 = snapshotOf({ 'shop.yaml': good, 'other.yaml': pa('pay', 'default', 'STRICT') });
  const broken = `${pa('shop', 'default', 'DISABLE')}---\n${we('web-1', '10.0.0.1').replace('labels: {app: web}', 'labels: {app: web')}`;
  const v2 = snapshotOf({ 'shop.yaml': broken, 'other.yaml': pa('pay', 'default', 'DISABLE') }, v1);
  t.same(v2.workloadEntries.map((w) => w.meta.name), ['web-1'], 'the unreadable document\'s object stays');
  t.equal(v2.peerAuthentications.find((p) => p.meta.namespace === 'shop')?.mode, 'DISABLE', 'readable documents of the same file apply');
  t.equal(v2.peerAuthentications.find((p) => p.meta.namespace === 'pay')?.mode, 'DISABLE', 'other files apply');
  t.ok(v2.messages.some((m) => m.level === 'error' && m.source.file === 'shop.yaml'));
  t.ok(v2.messages.some((m) => m.level === 'warning' && m.message === 'keeping the last good version of WorkloadEntry/shop/web-1: shop.yaml has a document that cannot be read'));
});

t.test('a file emptied into garbage keeps its objects; an unknown kind (a typo) too', async (t) => {
  const v1 = snapshotOf({ 'shop.yaml': pa('shop', 'default', 'STRICT') });
  const v2 = snapshotOf({ 'shop.yaml': '{{{{' }, v1);
  t.equal(v2.peerAuthentications.length, 1);
  const v3 = snapshotOf({ 'shop.yaml': pa('shop', 'default', 'DISABLE').replace('kind: PeerAuthentication', 'kind: PeerAuthenticaton') }, v2);
  t.equal(v3.peerAuthentications[0]?.mode, 'STRICT');
});

t.test('a document that loses its name keeps the file\'s previous objects', async (t) => {
  const v1 = snapshotOf({ 'shop.yaml': pa('shop', 'default', 'STRICT') });
  const v2 = snapshotOf({ 'shop.yaml': pa('shop', 'default', 'DISABLE').replace('name: default', 'name: ""') }, v1);
  t.equal(v2.peerAuthentications[0]?.mode, 'STRICT');
});

t.test('deleting a document or a file removes its objects (a deliberate edit)', async (t) => {
  const v1 = snapshotOf({ 'a.yaml': `${pa('shop', 'default', 'STRICT')}---\n${we('web-1', '10.0.0.1')}`, 'b.yaml': pa('pay', 'default', 'STRICT') });
  const v2 = snapshotOf({ 'a.yaml': pa('shop', 'default', 'STRICT') }, v1);
  t.same(v2.workloadEntries, []);
  t.same(v2.peerAuthentications.map((p) => p.meta.namespace), ['shop']);
  t.same(v2.messages, []);
});

t.test('an unreadable file keeps its objects', async (t) => {
  const v1 = snapshotOf({ 'a.yaml': pa('shop', 'default', 'STRICT') });
  const { buildSnapshot } = await import('../../src/config/build-snapshot.js');
  const v2 = buildSnapshot([{ path: 'a.yaml', readError: 'EACCES: permission denied' }], v1);
  t.equal(v2.peerAuthentications.length, 1);
  t.same(v2.messages[0], { level: 'error', message: 'cannot read file: EACCES: permission denied', source: { file: 'a.yaml', line: 1 } });
});

t.test('a failing mesh config keeps the previous mesh settings', async (t) => {
  const v1 = snapshotOf({ 'mesh.yaml': 'trustDomain: one.local\n' });
  t.equal(v1.mesh.trustDomain, 'one.local');
  const v2 = snapshotOf({ 'mesh.yaml': 'trustDomain: two.local\nrootNamespace: 42\n' }, v1);
  t.equal(v2.mesh.trustDomain, 'one.local');
  t.same(v2.messages.map((m) => m.message), ['keeping the last good mesh config until this document is fixed', 'rootNamespace must be a string, got number 42']);
  const v3 = snapshotOf({ 'mesh.yaml': 'trustDomain: [\n' }, v2);
  t.equal(v3.mesh.trustDomain, 'one.local', 'a syntax error in mesh.yaml too');
  const v4 = snapshotOf({}, v3);
  t.equal(v4.mesh.trustDomain, 'cluster.local', 'removing mesh.yaml returns to the defaults');
});

t.test('retention survives several bad reloads in a row', async (t) => {
  let s = snapshotOf({ 'a.yaml': pa('shop', 'default', 'STRICT') });
  for (let i = 0; i < 3; i++) s = snapshotOf({ 'a.yaml': pa('shop', 'default', `BAD${i}`) }, s);
  t.equal(s.peerAuthentications[0]?.mode, 'STRICT');
  t.equal(s.version, 4);
});
