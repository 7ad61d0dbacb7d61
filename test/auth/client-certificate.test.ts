import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Registry } from 'prom-client';
import { Metadata } from '@grpc/grpc-js';
import { openCertificateAuthority } from '../../src/ca/index.js';
import { verifyClientSvid } from '../../src/auth/client-certificate.js';
import { AuthenticationError, type AuthContext } from '../../src/auth/identity.js';
import { MeshAuthenticator } from '../../src/auth/authenticator.js';
import { TokenAuthority } from '../../src/auth/token-authority.js';
import { systemClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { mintRoot } from '../../src/ca/root-mint.js';
import { forgedExponentOneCsr, leafSignedWithoutChecks, rsaKeyWithExponent } from '../ca/helpers.js';

async function ca() {
  return openCertificateAuthority({ dataDir: await mkdtemp(join(tmpdir(), 'meshd-auth-')), trustDomain: 'cluster.local', registry: new Registry(), autoRotate: false });
}

t.test('client SVID checks: signer, validity, CA flag, one URI SAN, trust domain', async (t) => {
  const mine = await ca();
  const foreign = await ca();
  const roots = mine.trustBundle().rootsPem.map((p) => new X509Certificate(p));
  const svid = await mine.issue({ spiffeId: 'spiffe://cluster.local/ns/payments/sa/api' });
  const raw = new X509Certificate(svid.certPem).raw;
  const now = Date.now();

  t.match(verifyClientSvid(raw, roots, 'cluster.local', now), { spiffeId: 'spiffe://cluster.local/ns/payments/sa/api' });

  const reject = (fn: () => unknown, reason: string, message: RegExp) => {
    try { fn(); t.fail('expected a refusal'); } catch (e) {
      t.type(e, AuthenticationError);
      t.equal((e as AuthenticationError).reason, reason);
      t.match((e as Error).message, message);
    }
  };
  const foreignSvid = await foreign.issue({ spiffeId: 'spiffe://cluster.local/ns/payments/sa/api' });
  reject(() => verifyClientSvid(new X509Certificate(foreignSvid.certPem).raw, roots, 'cluster.local', now), 'untrusted', /not signed by this mesh's CA/);
  reject(() => verifyClientSvid(raw, roots, 'cluster.local', Date.parse(svid.notAfter.toISOString()) + 60_000), 'expired', /has expired \(notAfter /);
  reject(() => verifyClientSvid(raw, roots, 'example.org', now), 'untrusted', /not in trust domain example.org/);
  reject(() => verifyClientSvid(new X509Certificate(mine.trustBundle().rootsPem[0]!).raw, roots, 'cluster.local', now), 'invalid', /CA certificate/);
  reject(() => verifyClientSvid(Buffer.from('garbage'), roots, 'cluster.local', now), 'invalid', /cannot be parsed/);
});

t.test('a client SVID whose namespace or service account is not a Kubernetes name is refused, not turned into an identity', async (t) => {
  const mine = await ca();
  const authenticator = new MeshAuthenticator({
    trustDomain: 'cluster.local',
    tokens: await TokenAuthority.open(await mkdtemp(join(tmpdir(), 'meshd-auth-')), systemClock),
    issuers: () => mine.trustBundle().rootsPem.map((p) => new X509Certificate(p)),
    clock: systemClock,
    logger: silentLogger(),
    failures: new Counter({ name: 'citadel_server_authentication_failure_count', help: 'x', registers: [new Registry()] }),
  });
  const present = async (spiffeId: string) => {
    const svid = await mine.issue({ spiffeId });
    const authContext = { sslPeerCertificate: { raw: new X509Certificate(svid.certPem).raw } } as unknown as AuthContext;
    return authenticator.authenticate({ metadata: new Metadata(), authContext, peer: 'test' });
  };
  t.match(await present('spiffe://cluster.local/ns/payments/sa/api.v2'), { namespace: 'payments', serviceAccount: 'api.v2', via: 'client-certificate' });
  // Valid SPIFFE IDs that the CA signs (a plug-in intermediate may sign anything), but no Kubernetes workload's.
  for (const [id, message] of [
    ['spiffe://cluster.local/ns/Payments/sa/api', /namespace "Payments" is not a valid Kubernetes name/],
    ['spiffe://cluster.local/ns/payments/sa/api_v2', /service account "api_v2" is not a valid Kubernetes name/],
    ['spiffe://cluster.local/ns/payments/sa/-api', /service account "-api"/],
    [`spiffe://cluster.local/ns/${'n'.repeat(64)}/sa/api`, /longer than 63 characters/],
  ] as const) {
    const err = await present(id).catch((e: unknown) => e);
    t.type(err, AuthenticationError, `${id.slice(0, 60)}: refused`);
    t.equal((err as AuthenticationError).reason, 'invalid');
    t.match((err as Error).message, message);
  }
});

t.test('a client SVID for an RSA key with exponent 1 or 3 (signed by a CA that did not check) proves nothing; 65537 does', async (t) => {
  const root = await mintRoot({ trustDomain: 'cluster.local', keyType: 'ec-p256', ttlMs: 86_400_000, now: Date.now() });
  const roots = [new X509Certificate(root.certPem)];
  const id = 'spiffe://cluster.local/ns/payments/sa/api';
  const raw = async (spki: Buffer): Promise<Buffer> => new X509Certificate(await leafSignedWithoutChecks(root, id, spki)).raw;
  t.match(verifyClientSvid(await raw(rsaKeyWithExponent(65537).spki), roots, 'cluster.local', Date.now()), { spiffeId: id }, 'e = 65537: accepted');
  const cases: [string, Buffer, RegExp][] = [
    ['e = 3', rsaKeyWithExponent(3).spki, /^client certificate key is refused: RSA public exponent 3 is not accepted \(only 65537\)$/],
    ['e = 1', forgedExponentOneCsr().spki, /^client certificate key is refused: RSA public exponent 1 is not accepted \(only 65537\): with e = 1 anyone can forge its signatures$/],
  ];
  for (const [what, spki, message] of cases) {
    try {
      verifyClientSvid(await raw(spki), roots, 'cluster.local', Date.now());
      t.fail(`${what}: accepted`);
    } catch (e) {
      t.type(e, AuthenticationError, what);
      t.equal((e as AuthenticationError).reason, 'invalid', `${what}: invalid`);
      t.match((e as Error).message, message, what);
    }
  }
});
