import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/common/clock.js';
import { TokenAuthority } from '../../src/auth/token-authority.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { csrWithToken, type CsrOutcome } from './helpers/csr-outcome.js';
import { startTestMeshd, bearer, type TestMeshd } from './helpers/meshd.js';
import { runMeshd } from './helpers/serve-process.js';
import { expectRefused, issueToken, type Issued } from './helpers/join-tokens.js';

/**
 * Single-use and revoked join tokens, made by the real `meshd token issue` / `meshd token
 * revoke` and used on a real meshd (CSR API over TLS): a single-use token is refused after its
 * first use, also after a restart; a revocation takes effect on a running meshd. Each refusal is
 * named, counted, with nothing minted; so are expired and foreign tokens.
 */
const API = 'spiffe://cluster.local/ns/payments/sa/payments-api';

const dataDir = await mkdtemp(join(tmpdir(), 'meshd-join-'));
t.teardown(() => rm(dataDir, { recursive: true, force: true }));
let meshd: TestMeshd = await startTestMeshd({ dataDir, configDir: 'examples/config' });
t.teardown(() => meshd.close());

/** `meshd token issue` on this meshd's data dir. */
const issue = (t: Test, flags: string[]): Promise<Issued> => issueToken(t, dataDir, flags);

/** One CreateCertificate with the token: the URI of the certificate, or the refusal. */
const csrWith = (token: string): Promise<CsrOutcome> => csrWithToken(meshd, token, API);

/** The refusal is the expected status and reason, counted once with `reason`, and nothing is minted. */
const refused = (t: Test, token: string, code: grpc.status, details: RegExp, reason: string, labels: Record<string, string>): Promise<void> =>
  expectRefused(t, meshd, API, token, { code, details, reason, labels });

t.test('--single-use: accepted once, refused as reused afterwards, also after a meshd restart', async (t) => {
  const once = await issue(t, ['-n', 'payments', '-s', 'payments-api', '--single-use']);
  t.match(once.stderr, /, single-use/);
  t.equal(await csrWith(once.token), API, 'first use: a certificate');
  const who = { namespace: 'payments', service_account: 'payments-api' };
  await refused(t, once.token, grpc.status.UNAUTHENTICATED, new RegExp(`token ${once.id} is single-use and has already been used`), 'reused', who);
  await meshd.close();
  meshd = await startTestMeshd({ dataDir, configDir: 'examples/config' });
  await refused(t, once.token, grpc.status.UNAUTHENTICATED, /is single-use and has already been used/, 'reused', who);
  // The same token on SDS (Envoy's direct path) is refused too.
  const s = meshd.tlsClient().sotw('sds', { node: { id: 'n' }, metadata: bearer(once.token) });
  s.subscribe(TypeUrl.Secret, ['default']);
  const st = await s.status;
  t.equal(st.code, grpc.status.UNAUTHENTICATED);
  t.match(st.details, /already been used/);
});

t.test('meshd token revoke ID: a running meshd refuses the token from its next use', async (t) => {
  const tok = await issue(t, ['-n', 'payments', '-s', 'payments-api']);
  t.equal(await csrWith(tok.token), API, 'before revocation: accepted (and now cached as verified)');
  const r = await runMeshd(['token', 'revoke', tok.id, '--data-dir', dataDir]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, new RegExp(`revoked token ${tok.id}`));
  await refused(t, tok.token, grpc.status.UNAUTHENTICATED, new RegExp(`token ${tok.id} has been revoked`), 'revoked', { namespace: 'payments', service_account: 'payments-api' });
  const bad = await runMeshd(['token', 'revoke', '../../ca', '--data-dir', dataDir]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /is not a token id/);
});

t.test('expired and foreign tokens: UNAUTHENTICATED naming the reason, counted, nothing minted', async (t) => {
  const past = await TokenAuthority.open(dataDir, new ManualClock(Date.now() - 2 * 3_600_000));
  const expired = (await past.issue({ namespace: 'payments', serviceAccount: 'payments-api' }, 3_600_000)).token;
  await refused(t, expired, grpc.status.UNAUTHENTICATED, /token has expired/, 'expired', { namespace: 'payments', service_account: 'payments-api' });
  const otherDir = await mkdtemp(join(tmpdir(), 'meshd-join-other-'));
  t.teardown(() => rm(otherDir, { recursive: true, force: true }));
  const foreign = (await (await TokenAuthority.open(otherDir, new ManualClock())).issue({ namespace: 'payments', serviceAccount: 'payments-api' }, 3_600_000)).token;
  await refused(t, foreign, grpc.status.UNAUTHENTICATED, /token signature is not valid for this meshd/, 'invalid', { namespace: '', service_account: '' });
});
