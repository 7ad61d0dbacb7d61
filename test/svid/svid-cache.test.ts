import t, { type Test } from 'tap';
import { Registry } from 'prom-client';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import { ManualClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { SvidCache, svidKey } from '../../src/svid/svid-cache.js';
import { tempDir } from '../ca/helpers.js';

/**
 * The SVID cache on a real CA, its sweep on a ManualClock: an SVID is reported due at the first
 * sweep after its rotation point and not before, once, and forgotten once it expired unclaimed.
 */
const ID = 'spiffe://cluster.local/ns/shop/sa/cart';
const HOUR = 3_600_000;

async function setup(t: Test, tickMs = 1000) {
  const clock = new ManualClock(Date.now());
  const ca = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'cluster.local', registry: new Registry(), clock, autoRotate: false });
  const due: Array<{ at: number; keys: string[] }> = [];
  const svids = new SvidCache({
    ca, clock, logger: silentLogger(), ttlMs: () => HOUR, rotation: () => ({ fraction: 0.8, jitter: 0.02 }), random: () => 0.5,
    onDue: (keys) => due.push({ at: clock.now(), keys: [...keys] }), tickMs,
  });
  svids.start();
  t.teardown(() => svids.stop());
  return { clock, svids, due };
}

t.test('a due SVID is reported at the first sweep after its rotation point, once; asking again re-issues it', async (t) => {
  const { clock, svids, due } = await setup(t);
  const first = await svids.get('cart-1', ID);
  const rotationPoint = first.notBefore.getTime() + Math.floor((first.notAfter.getTime() - first.notBefore.getTime()) * 0.8);
  clock.set(rotationPoint - 1);
  t.same(due, [], 'nothing before the rotation point');
  t.equal(await svids.get('cart-1', ID), first, 'the proxy still gets the SVID it holds');
  clock.advance(1000);
  t.equal(due.length, 1, 'reported by the next sweep');
  t.same(due[0]!.keys, [svidKey(ID, 'cart-1')]);
  t.ok(due[0]!.at >= rotationPoint && due[0]!.at < rotationPoint + 1000, 'within one tick of the rotation point');
  clock.advance(10 * 60_000);
  t.equal(due.length, 1, 'reported once, though the proxy has not asked yet');
  const second = await svids.get('cart-1', ID);
  t.not(second, first, 'asking after the rotation point issues a new SVID');
  t.not(second.serialHex, first.serialHex);
  t.equal(await svids.get('cart-1', ID), second, 'and keeps it');
});

t.test('an SVID whose proxy stayed away until it expired is forgotten by the sweep', async (t) => {
  const { clock, svids } = await setup(t);
  const svid = await svids.get('gone-1', ID);
  t.equal(svids.size, 1);
  clock.set(svid.notAfter.getTime() - 1);
  t.equal(svids.size, 1, 'kept while valid');
  clock.advance(1000);
  t.equal(svids.size, 0, 'dropped once expired');
});

t.test('the sweep runs every tick on the clock until stop()', async (t) => {
  const { clock, svids } = await setup(t, 250);
  t.same(clock.timerDelays(), [250]);
  clock.advance(1000);
  t.same(clock.timerDelays(), [250], 'armed again after each sweep');
  svids.stop();
  t.same(clock.timerDelays(), [], 'nothing pending after stop()');
  svids.start();
  t.same(clock.timerDelays(), [250], 'start() again resumes');
});
