import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ManualClock } from '../../src/common/clock.js';
import { openCertificateAuthority, type CertificateAuthorityOptions } from '../../src/ca/authority.js';
import {
  activeRoot, bundleRoots, bundleSequence, initialJournal, nextTransition, pendingSuccessor, planRotation, PRUNE_MARGIN_MS,
  rootState, rotationDue, rotationDueAt, type Journal, type RootRecord,
} from '../../src/ca/rotation.js';
import type { TrustBundle } from '../../src/ca/types.js';
import { metricValue, opensslVerify, tempDir } from './helpers.js';

const DAY = 86_400_000;
const YEAR = 365 * DAY;
const T0 = Date.UTC(2026, 0, 1);

function rec(id: string, notBefore: number, lifeMs: number): Omit<RootRecord, 'preparedAt' | 'activateAt' | 'pruneAt'> {
  return { id, keyType: 'ec-p256', fingerprint256: id.padEnd(64, '0').replace(/[^0-9a-f]/g, 'a'), notBefore, notAfter: notBefore + lifeMs };
}

t.test('rotation is due in the last 20% of the active root\'s life, once', async (t) => {
  const journal = initialJournal('td', rec('root-1', T0, 10 * YEAR), T0);
  t.equal(rotationDueAt(journal.roots[0]!), T0 + 8 * YEAR);
  const table: [number, boolean][] = [
    [T0, false],
    [T0 + 5 * YEAR, false],
    [T0 + 8 * YEAR - 1, false],
    [T0 + 8 * YEAR, true],
    [T0 + 9.9 * YEAR, true],
  ];
  for (const [now, due] of table) t.equal(rotationDue(journal.roots, now), due, `${(now - T0) / YEAR} years`);
  t.equal(rotationDueAt(journal.roots[0]!, 0.5), T0 + 5 * YEAR, 'threshold is a parameter');
  const rotated = planRotation(journal, { now: T0 + 8 * YEAR, next: rec('root-2', T0 + 8 * YEAR, 10 * YEAR), overlapMs: DAY, maxLeafTtlMs: 90 * DAY });
  t.equal(rotationDue(rotated.roots, T0 + 8 * YEAR + 1), false, 'not due again while a successor is pending');
  t.equal(rotationDue(rotated.roots, T0 + 8 * YEAR + DAY + 1), false, 'nor once the successor signs (it is young)');
});

t.test('a prepared root is trusted at once, signs after the overlap, and its predecessor leaves once its SVIDs expired', async (t) => {
  const j0: Journal = initialJournal('td', rec('root-1', T0, 10 * YEAR), T0);
  const prep = T0 + 8 * YEAR;
  const j1 = planRotation(j0, { now: prep, next: rec('root-2', prep, 10 * YEAR), overlapMs: DAY, maxLeafTtlMs: 90 * DAY });
  const pruneAt = prep + DAY + 90 * DAY + PRUNE_MARGIN_MS;
  t.equal(j1.roots[0]!.pruneAt, pruneAt, 'old root pruned after activation + max leaf TTL (+ margin)');
  t.throws(() => planRotation(j1, { now: prep + 1, next: rec('root-3', prep, YEAR), overlapMs: 0, maxLeafTtlMs: DAY }), /root-2 is already prepared/);
  const ids = (rs: RootRecord[]) => rs.map((r) => r.id);
  const timeline: [string, number, string | undefined, string[], number, string][] = [
    // label, now, active, bundle, sequence, state of root-1
    ['before rotation', prep - 1, 'root-1', ['root-1'], 1, 'active'],
    ['prepared', prep, 'root-1', ['root-1', 'root-2'], 2, 'active'],
    ['overlap ends', prep + DAY, 'root-2', ['root-1', 'root-2'], 2, 'old'],
    ['last old SVID still valid', pruneAt - 1, 'root-2', ['root-1', 'root-2'], 2, 'old'],
    ['pruned', pruneAt, 'root-2', ['root-2'], 3, 'removed'],
  ];
  for (const [label, now, active, bundle, sequence, state] of timeline) {
    t.equal(activeRoot(j1.roots, now)?.id, active, `${label}: active`);
    t.same(ids(bundleRoots(j1.roots, now)), bundle, `${label}: bundle`);
    t.equal(bundleSequence(j1.roots, now), sequence, `${label}: spiffe_sequence`);
    t.equal(rootState(j1.roots[0]!, j1.roots, now), state, `${label}: root-1 is ${state}`);
  }
  t.equal(pendingSuccessor(j1.roots, prep)?.id, 'root-2');
  t.equal(pendingSuccessor(j1.roots, prep + DAY), undefined);
  t.equal(nextTransition(j1.roots, prep), prep + DAY, 'next change: activation');
  t.equal(nextTransition(j1.roots, prep + DAY), pruneAt, 'then: pruning');

  const shortLived = planRotation(initialJournal('td', rec('root-1', T0, 30 * DAY), T0), { now: T0 + 25 * DAY, next: rec('root-2', T0 + 25 * DAY, YEAR), overlapMs: DAY, maxLeafTtlMs: 90 * DAY });
  t.equal(shortLived.roots[0]!.pruneAt, T0 + 30 * DAY, 'never trusted past its own notAfter');
});

function open(dataDir: string, clock: ManualClock, extra: Partial<CertificateAuthorityOptions> = {}) {
  return openCertificateAuthority({ dataDir, trustDomain: 'cluster.local', registry: new Registry(), clock, rotationOverlapMs: 3_600_000, ...extra });
}

t.test('rotate-root: old and new SVIDs both verify against the bundle; subscribers hear every change', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(Date.now());
  const registry = new Registry();
  const ca = await open(dir, clock, { registry });
  const events: TrustBundle[] = [];
  ca.onBundleChange((b) => events.push(b));
  const oldLeaf = await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/a/sa/old' });
  t.equal(ca.trustBundle().sequence, 1);

  const prepared = await ca.prepareNextRoot();
  await Promise.resolve();
  t.equal(prepared.id, 'root-2');
  t.equal(prepared.state, 'prepared');
  t.equal(prepared.activateAt!.getTime(), clock.now() + 3_600_000);
  t.equal(events.length, 1, 'bundle change announced at once');
  t.equal(events[0]!.rootsPem.length, 2);
  t.equal(events[0]!.sequence, 2);
  const during = await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/a/sa/during' });
  t.equal(during.issuerFingerprint, oldLeaf.issuerFingerprint, 'still signed by the old root during the overlap');
  t.equal(during.rootsPem, ca.trustBundle().rootsPem.join(''), 'leaves carry the whole bundle');
  await t.rejects(ca.prepareNextRoot(), /root-2 is already prepared/);

  clock.advance(3_600_000);
  const newLeaf = await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/a/sa/new' });
  await Promise.resolve();
  t.not(newLeaf.issuerFingerprint, oldLeaf.issuerFingerprint, 'signed by the new root after the overlap');
  t.equal(newLeaf.issuerFingerprint, prepared.fingerprint256);
  t.equal(events.length, 2, 'activation announced');
  t.equal(ca.status().roots.map((r) => r.state).join(), 'old,active');

  const bundle = ca.trustBundle().rootsPem.join('');
  for (const [what, leaf] of [['old', oldLeaf], ['new', newLeaf]] as const) {
    const v = opensslVerify(dir, bundle, leaf.certPem, undefined, clock.now());
    t.ok(v.ok, `${what} SVID verifies against the rotated bundle: ${v.output.trim()}`);
  }
  t.notOk(opensslVerify(dir, ca.trustBundle().rootsPem[1]!, oldLeaf.certPem, undefined, clock.now()).ok, 'the old SVID needs the old root (the check can fail)');
  t.equal(metricValue(await registry.metrics(), 'meshd_ca_trust_bundle_roots'), 2);

  // Once every SVID the old root signed has expired, it leaves the bundle.
  clock.advance(90 * DAY + PRUNE_MARGIN_MS);
  t.equal(ca.trustBundle().rootsPem.length, 1);
  t.equal(ca.trustBundle().sequence, 3);
  await Promise.resolve();
  t.equal(events.length, 3, 'pruning announced');
  t.equal(ca.status().roots.map((r) => r.state).join(), 'removed,active');

  const restarted = await open(dir, clock);
  t.same(restarted.trustBundle(), ca.trustBundle(), 'a restart derives the same bundle and sequence from the journal');
});

t.test('a root prepared by another process (meshd ca rotate-root) reaches a running CA on refresh', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(Date.now());
  const serve = await open(dir, clock);
  const events: number[] = [];
  serve.onBundleChange((b) => events.push(b.rootsPem.length));
  const cli = await open(dir, clock, { rotationOverlapMs: 0 });
  const prepared = await cli.prepareNextRoot();
  t.equal(serve.trustBundle().rootsPem.length, 1, 'not seen before the refresh');
  await serve.refresh();
  await Promise.resolve();
  t.same(events, [2]);
  const leaf = await serve.issue({ spiffeId: 'spiffe://cluster.local/ns/a/sa/b' });
  t.equal(leaf.issuerFingerprint, prepared.fingerprint256, 'zero overlap: the new root signs at once');
  const journal = readFileSync(join(dir, 'ca/journal.json'), 'utf8');
  await serve.tick();
  t.equal(readFileSync(join(dir, 'ca/journal.json'), 'utf8'), journal, 'a refresh with nothing to do writes nothing');
});

t.test('automatic rotation prepares the next root when the active one enters its last 20%', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(Date.now());
  const ca = await open(dir, clock, { rootTtlMs: 10 * DAY });
  const created = ca.status().roots[0]!;
  t.equal(ca.status().nextRotationAt!.getTime(), created.notAfter.getTime() - 0.2 * (created.notAfter.getTime() - created.notBefore.getTime()));
  clock.set(ca.status().nextRotationAt!.getTime() - 1000);
  await ca.tick();
  t.equal(ca.status().roots.length, 1, 'not yet');
  clock.advance(1000);
  await ca.tick();
  t.same(ca.status().roots.map((r) => `${r.id}:${r.state}`), ['root-1:active', 'root-2:prepared'], 'prepared at the threshold');
  await ca.tick();
  t.equal(ca.status().roots.length, 2, 'and only once');
});

t.test('the running timer picks up a journal change by itself, every refresh interval on the clock', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(Date.now());
  const serve = await open(dir, clock, { refreshIntervalMs: 10_000 });
  serve.start();
  t.teardown(() => serve.stop());
  t.same(clock.timerDelays(), [10_000], 'the first check is one interval away');
  const changes: TrustBundle[] = [];
  serve.onBundleChange((b) => changes.push(b));
  await (await open(dir, clock)).prepareNextRoot();
  clock.advance(9_999);
  await settle();
  t.equal(changes.length, 0, 'nothing before the interval is up');
  clock.advance(1);
  await until(() => changes.length > 0);
  t.equal(changes[0]!.rootsPem.length, 2, 'the prepared root is in the bundle');
  await until(() => clock.timerDelays().length === 1);
  t.same(clock.timerDelays(), [10_000], 'the next check is one interval after this one finished');
  serve.stop();
  t.same(clock.timerDelays(), [], 'stop() drops the pending check');
});

t.test('automatic rotation runs from the timer: the next root is prepared once the threshold passes', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(Date.now());
  const ca = await open(dir, clock, { rootTtlMs: 10 * DAY, refreshIntervalMs: 10_000 });
  ca.start();
  t.teardown(() => ca.stop());
  const dueAt = ca.status().nextRotationAt!.getTime();
  clock.set(dueAt - 5_000);
  await until(() => clock.timerDelays().length === 1);
  t.equal(ca.status().roots.length, 1, 'not before the threshold');
  clock.advance(10_000);
  await until(() => ca.status().roots.length === 2);
  t.same(ca.status().roots.map((r) => `${r.id}:${r.state}`), ['root-1:active', 'root-2:prepared']);
});

/** Lets the CA's file reads (real I/O started by a timer) finish: polls with a deadline. */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await settle();
  }
}

/** One turn for pending I/O callbacks. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
