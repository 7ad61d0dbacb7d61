import t, { type Test } from 'tap';
import { Registry } from 'prom-client';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import type { CertificateAuthority, IssuedKeyPair } from '../../src/ca/types.js';
import { ManualClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { ServingIdentity } from '../../src/svid/serving-identity.js';
import { controlPlaneSpiffeId } from '../../src/mesh/spiffe-identity.js';
import { tempDir } from '../ca/helpers.js';

/** meshd's own serving SVID: renewed at its rotation point on the injected clock, retried every 30 s on failure. */
const HOUR = 3_600_000;

async function setup(t: Test, ttlMs = 24 * HOUR) {
  const clock = new ManualClock(Date.now());
  const real = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'cluster.local', registry: new Registry(), clock, autoRotate: false });
  const failing = { next: 0 };
  const ca = {
    issue: (opts: Parameters<CertificateAuthority['issue']>[0]) => {
      if (failing.next > 0) { failing.next -= 1; return Promise.reject(new Error('the CA is unavailable')); }
      return real.issue(opts);
    },
  } as unknown as CertificateAuthority;
  const renewed: IssuedKeyPair[] = [];
  const serving = new ServingIdentity({
    ca, clock, logger: silentLogger(), spiffeId: controlPlaneSpiffeId('cluster.local'), dnsNames: ['meshd'], ttlMs,
    rotation: { fraction: 0.8, jitter: 0.02 }, random: () => 0.5, onRenewed: (svid) => renewed.push(svid),
  });
  t.teardown(() => serving.stop());
  return { clock, serving, renewed, failing };
}

const rotationPoint = (svid: IssuedKeyPair): number =>
  svid.notBefore.getTime() + Math.floor((svid.notAfter.getTime() - svid.notBefore.getTime()) * 0.8);

/** The renewal runs the CA's signing (real work) after the timer fired: waits for its outcome. */
async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('not in time');
    await new Promise((r) => setImmediate(r));
  }
}

t.test('renews at the rotation point on the clock, then again at the next one', async (t) => {
  const { clock, serving, renewed } = await setup(t);
  const first = await serving.start();
  t.same(clock.timerDelays(), [rotationPoint(first) - clock.now()], 'armed for the rotation point (jitter drawn at its middle)');
  clock.set(rotationPoint(first) - 1);
  t.same(clock.timerDelays(), [1], 'not a millisecond early: still pending');
  clock.advance(1);
  await until(() => renewed.length === 1);
  t.not(renewed[0]!.serialHex, first.serialHex, 'a new certificate');
  t.equal(serving.svid, renewed[0], 'and it is the one served');
  t.same(clock.timerDelays(), [rotationPoint(renewed[0]!) - clock.now()], 'the next renewal is armed');
});

t.test('a failed renewal keeps the current certificate and is retried every 30 s', async (t) => {
  const { clock, serving, renewed, failing } = await setup(t);
  const first = await serving.start();
  failing.next = 2;
  clock.set(rotationPoint(first));
  await until(() => clock.timerDelays().length === 1 && clock.timerDelays()[0] === 30_000);
  t.equal(serving.svid, first, 'the current certificate stays in use');
  clock.advance(30_000);
  await until(() => failing.next === 0 && clock.timerDelays()[0] === 30_000);
  t.equal(renewed.length, 0, 'the second attempt failed too');
  clock.advance(30_000);
  await until(() => renewed.length === 1);
  t.equal(serving.svid, renewed[0]);
});

t.test('a rotation point already past is not a busy loop: at least a second from now', async (t) => {
  // A 1 s certificate's rotation point lies before now (notBefore is backdated for clock skew).
  const { clock, serving } = await setup(t, 1000);
  const first = await serving.start();
  t.ok(rotationPoint(first) < clock.now(), 'the rotation point has passed');
  t.same(clock.timerDelays(), [1000]);
});

t.test('stop() leaves nothing pending', async (t) => {
  const { clock, serving } = await setup(t);
  await serving.start();
  serving.stop();
  t.same(clock.timerDelays(), []);
  await serving.renew();
  t.same(clock.timerDelays(), [], 'a renewal after stop() arms nothing');
});
