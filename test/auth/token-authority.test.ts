import t from 'tap';
import { mkdtemp, readFile, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/common/clock.js';
import { TokenAuthority, TOKEN_KEY_FILE } from '../../src/auth/token-authority.js';
import { AuthenticationError } from '../../src/auth/identity.js';
import { SignJWT, importPKCS8 } from 'jose';

async function dataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'meshd-token-'));
}

t.test('a token issued for an identity verifies back to that identity', async (t) => {
  const dir = await dataDir();
  const clock = new ManualClock();
  const tokens = await TokenAuthority.open(dir, clock);
  const { token, expiresAt } = await tokens.issue({ namespace: 'payments', serviceAccount: 'api' }, 3_600_000);
  t.equal(expiresAt.getTime(), clock.now() + 3_600_000);
  t.has(await tokens.verify(token), { namespace: 'payments', serviceAccount: 'api' });
  t.equal((await stat(join(dir, TOKEN_KEY_FILE))).mode & 0o777, 0o600, 'signing key is private');
});

t.test('the signing key is kept across restarts, so old tokens stay valid', async (t) => {
  const dir = await dataDir();
  const clock = new ManualClock();
  const first = await TokenAuthority.open(dir, clock);
  const { token } = await first.issue({ namespace: 'a', serviceAccount: 'b' }, 60_000);
  const keyBefore = await readFile(join(dir, TOKEN_KEY_FILE), 'utf8');
  const second = await TokenAuthority.open(dir, clock);
  t.has(await second.verify(token), { namespace: 'a', serviceAccount: 'b' });
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

/** A token signed with the data dir's own key (as an attacker holding it, or a buggy issuer, would make one), with exactly `claims`. */
async function forge(dir: string, claims: Record<string, unknown>): Promise<string> {
  const key = await importPKCS8(await readFile(join(dir, TOKEN_KEY_FILE), 'utf8'), 'ES256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(key);
}

t.test('a token signed by the real key but missing exp, iat, aud, iss or sub is refused, naming the claim', async (t) => {
  const dir = await dataDir();
  const clock = new ManualClock();
  const tokens = await TokenAuthority.open(dir, clock);
  const now = Math.floor(clock.now() / 1000);
  const complete = { iss: 'meshd', aud: 'istio-ca', sub: 'system:serviceaccount:payments:api', iat: now, nbf: now - 60, exp: now + 600 };
  t.has(await tokens.verify(await forge(dir, complete)), { namespace: 'payments', serviceAccount: 'api' }, 'the complete token is accepted');
  for (const claim of ['exp', 'iat', 'aud', 'iss', 'sub'] as const) {
    const { [claim]: _dropped, ...rest } = complete;
    const err = await tokens.verify(await forge(dir, rest)).catch((e: unknown) => e);
    t.type(err, AuthenticationError, `without ${claim}: refused`);
    t.equal((err as AuthenticationError).reason, 'invalid');
    t.equal((err as Error).message, `token has no "${claim}" claim`, `without ${claim}: the message names it`);
  }
});

t.test('a subject whose namespace or service account is not a Kubernetes name is refused at verification', async (t) => {
  const dir = await dataDir();
  const clock = new ManualClock();
  const tokens = await TokenAuthority.open(dir, clock);
  const now = Math.floor(clock.now() / 1000);
  const subjects: Array<[string, RegExp]> = [
    ['system:serviceaccount:..:.', /namespace "\.\." is not a valid Kubernetes name/],
    ['system:serviceaccount:payments:.', /service account "\." is not a valid Kubernetes name/],
    ['system:serviceaccount:Payments:api', /namespace "Payments"/],
    ['system:serviceaccount:pay_ments:api', /namespace "pay_ments"/],
    ['system:serviceaccount:payments:api-', /service account "api-"/],
    [`system:serviceaccount:${'n'.repeat(64)}:api`, /longer than 63 characters/],
    [`system:serviceaccount:payments:${'s'.repeat(254)}`, /longer than 253 characters/],
    ['system:serviceaccount:payments', /not system:serviceaccount:<namespace>:<name>/],
  ];
  for (const [sub, message] of subjects) {
    const err = await tokens.verify(await forge(dir, { iss: 'meshd', aud: 'istio-ca', sub, iat: now, exp: now + 600 })).catch((e: unknown) => e);
    t.type(err, AuthenticationError, `${sub.slice(0, 60)}: refused`);
    t.match((err as Error).message, message);
  }
  const ok = await tokens.verify(await forge(dir, { iss: 'meshd', aud: 'istio-ca', sub: `system:serviceaccount:${'n'.repeat(63)}:a.b-c.${'s'.repeat(200)}`, iat: now, exp: now + 600 }));
  t.equal(ok.namespace.length, 63, 'the longest names Kubernetes allows are accepted');
});

t.test('issue refuses names that are not Kubernetes names', async (t) => {
  const tokens = await TokenAuthority.open(await dataDir(), new ManualClock());
  await t.rejects(tokens.issue({ namespace: '..', serviceAccount: '.' }, 60_000), /cannot issue a token: namespace "\.\." is not a valid Kubernetes name/);
  await t.rejects(tokens.issue({ namespace: 'payments', serviceAccount: 'API' }, 60_000), /service account "API" is not a valid Kubernetes name/);
  await t.rejects(tokens.issue({ namespace: 'a'.repeat(64), serviceAccount: 'api' }, 60_000), /longer than 63 characters/);
  t.ok((await tokens.issue({ namespace: 'payments', serviceAccount: 'api.v2' }, 60_000)).token, 'a service account with dots is a valid subdomain');
});
