import t from 'tap';
import { mkdtemp, readFile, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/common/clock.js';
import { TokenAuthority, TOKEN_KEY_FILE } from '../../src/auth/token-authority.js';
import { AuthenticationError } from '../../src/auth/identity.js';

async function dataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'meshd-token-'));
}

t.test('a token issued for an identity verifies back to that identity', async (t) => {
  const dir = await dataDir();
  const clock = new ManualClock();
  const tokens = await TokenAuthority.open(dir, clock);
  const { token, expiresAt } = await tokens.issue({ namespace: 'payments', serviceAccount: 'api' }, 3_600_000);
  t.equal(expiresAt.getTime(), clock.now() + 3_600_000);
  t.same(await tokens.verify(token), { namespace: 'payments', serviceAccount: 'api' });
  t.equal((await stat(join(dir, TOKEN_KEY_FILE))).mode & 0o777, 0o600, 'signing key is private');
});

t.test('the signing key is kept across restarts, so old tokens stay valid', async (t) => {
  const dir = await dataDir();
  const clock = new ManualClock();
  const first = await TokenAuthority.open(dir, clock);
  const { token } = await first.issue({ namespace: 'a', serviceAccount: 'b' }, 60_000);
  const keyBefore = await readFile(join(dir, TOKEN_KEY_FILE), 'utf8');
  const second = await TokenAuthority.open(dir, clock);
  t.same(await second.verify(token), { namespace: 'a', serviceAccount: 'b' });
  t.equal(await readFile(join(dir, TOKEN_KEY_FILE), 'utf8'), keyBefore);
});

t.test('expired, forged and malformed tokens are refused with a reason and no token in the message', async (t) => {
  const clock = new ManualClock();
  const tokens = await TokenAuthority.open(await dataDir(), clock);
  const other = await TokenAuthority.open(await dataDir(), clock);
  const { token } = await tokens.issue({ namespace: 'a', serviceAccount: 'b' }, 60_000);
  const forged = (await other.issue({ namespace: 'a', serviceAccount: 'b' }, 60_000)).token;

  clock.advance(120_000);
  const expired = await tokens.verify(token).catch((e: unknown) => e);
  t.type(expired, AuthenticationError);
  t.equal((expired as AuthenticationError).reason, 'expired');
  clock.advance(-120_000);

  const bad = await tokens.verify(forged).catch((e: unknown) => e);
  t.equal((bad as AuthenticationError).reason, 'invalid');
  t.match((bad as Error).message, /signature/);
  t.notMatch((bad as Error).message, forged.slice(0, 20));

  const garbage = await tokens.verify('not.a.jwt').catch((e: unknown) => e);
  t.equal((garbage as AuthenticationError).reason, 'invalid');
});

t.test('a fleet presenting one token at once shares one verification; a failure is not cached', async (t) => {
  const clock = new ManualClock();
  const dir = await dataDir();
  const issuer = await TokenAuthority.open(dir, clock);
  const counted = await TokenAuthority.open(dir, clock);
  let calls = 0;
  // Count the signature verifications behind verify() (an own property shadows the method).
  const inner = counted as unknown as { verifyUncached: (token: string) => Promise<unknown> };
  const real = inner.verifyUncached.bind(counted);
  inner.verifyUncached = (token) => { calls += 1; return real(token); };
  const { token } = await issuer.issue({ namespace: 'a', serviceAccount: 'b' }, 60_000);
  const all = await Promise.all(Array.from({ length: 200 }, () => counted.verify(token)));
  t.ok(all.every((s) => s.namespace === 'a' && s.serviceAccount === 'b'), '200 concurrent streams all get the identity');
  t.equal(calls, 1, 'one signature verification for 200 concurrent streams');
  const forged = `${token.slice(0, -4)}AAAA`;
  const refused = await Promise.allSettled(Array.from({ length: 20 }, () => counted.verify(forged)));
  t.ok(refused.every((r) => r.status === 'rejected' && r.reason instanceof AuthenticationError), 'every concurrent stream with a forged token is refused');
  const before = calls;
  await t.rejects(counted.verify(forged), /signature is not valid/, 'and refused again later');
  t.equal(calls, before + 1, 'the failure was verified again, not cached');
});

t.test('a corrupt signing key stops start-up and is left untouched', async (t) => {
  const dir = await dataDir();
  await writeFile(join(dir, TOKEN_KEY_FILE), 'garbage\n', { mode: 0o600 });
  await t.rejects(TokenAuthority.open(dir, new ManualClock()), /token signing key .* not a valid PEM private key/);
  t.equal(await readFile(join(dir, TOKEN_KEY_FILE), 'utf8'), 'garbage\n');
});
