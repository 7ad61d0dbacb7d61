import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { csrWithToken, type CsrOutcome } from './helpers/csr-outcome.js';
import { startTestMeshd, type TestMeshd } from './helpers/meshd.js';
import { runMeshd } from './helpers/serve-process.js';
import { expectRefused, issueToken, type Issued } from './helpers/join-tokens.js';

/**
 * Join tokens made by the real `meshd token issue`, used on a real meshd (CSR API over TLS, as
 * `meshd agent` uses them): default lifetime, ids, the long-lived warning, WorkloadEntry
 * binding, and each refusal named, counted, with nothing minted. Single use and revocation:
 * join-token-ledger.test.ts.
 */
const API = 'spiffe://cluster.local/ns/payments/sa/payments-api';

const dataDir = await mkdtemp(join(tmpdir(), 'meshd-join-'));
t.teardown(() => rm(dataDir, { recursive: true, force: true }));
const meshd: TestMeshd = await startTestMeshd({ dataDir, configDir: 'examples/config' });
t.teardown(() => meshd.close());

/** `meshd token issue` on this meshd's data dir. */
const issue = (t: Test, flags: string[]): Promise<Issued> => issueToken(t, dataDir, flags);

/** One CreateCertificate with the token: the URI of the certificate, or the refusal. */
const csrWith = (token: string): Promise<CsrOutcome> => csrWithToken(meshd, token, API);

/** The refusal is the expected status and reason, counted once with `reason`, and nothing is minted. */
const refused = (t: Test, token: string, code: grpc.status, details: RegExp, reason: string, labels: Record<string, string>): Promise<void> =>
  expectRefused(t, meshd, API, token, { code, details, reason, labels });

t.test('issue: 1h by default, its id printed, a warning above 24h, refuses meshd\'s own identity', async (t) => {
  const plain = await issue(t, ['-n', 'payments', '-s', 'payments-api']);
  t.equal(Number(plain.claims.exp) - Number(plain.claims.iat), 3600, 'default lifetime is one hour');
  t.match(plain.id, /^[0-9a-f-]{36}$/, 'the token id is printed on stderr');
  t.equal(plain.claims.jti, plain.id, 'and it is the token\'s jti');
  t.notMatch(plain.stderr, /warning/);

  const long = await issue(t, ['-n', 'payments', '-s', 'payments-api', '--ttl', '720h']);
  t.equal(Number(long.claims.exp) - Number(long.claims.iat), 720 * 3600, 'a long-lived token is still possible');
  t.match(long.stderr, /warning: a 720h token proves this identity to anyone holding it until /);

  const own = await runMeshd(['token', 'issue', '-n', 'istio-system', '-s', 'meshd', '--data-dir', dataDir]);
  t.equal(own.code, 1);
  t.match(own.stderr, /meshd's own identity, not a workload's/);
  t.equal(own.stdout, '', 'no token printed');
  t.equal(await csrWith(plain.token), API, 'the default token works on the CSR API');
});

t.test('--workload ns/name: the identity is the entry\'s service account; a missing entry or another account is PERMISSION_DENIED', async (t) => {
  const bound = await issue(t, ['--workload', 'payments/api-1', '--config-dir', 'examples/config']);
  t.match(bound.claims.sub, 'system:serviceaccount:payments:payments-api', 'the service account comes from the WorkloadEntry');
  t.match(bound.stderr, /bound to WorkloadEntry payments\/api-1/);
  t.equal(await csrWith(bound.token), API, 'accepted while the entry runs as that account');

  const mismatch = await issue(t, ['--workload', 'payments/api-1', '-s', 'shop-web']);
  await refused(t, mismatch.token, grpc.status.PERMISSION_DENIED,
    /names service account shop-web but its WorkloadEntry payments\/api-1 runs as payments-api/, 'workload_mismatch', { namespace: 'payments', service_account: 'shop-web' });
  const ghost = await issue(t, ['--workload', 'payments/ghost', '-s', 'payments-api']);
  await refused(t, ghost.token, grpc.status.PERMISSION_DENIED, /bound to WorkloadEntry payments\/ghost, which does not exist/, 'workload_unknown', { namespace: 'payments', service_account: 'payments-api' });

  const cli = await runMeshd(['token', 'issue', '--workload', 'payments/ghost', '--config-dir', 'examples/config', '--data-dir', dataDir]);
  t.equal(cli.code, 1);
  t.match(cli.stderr, /no WorkloadEntry payments\/ghost in examples\/config/);
  t.equal(cli.stdout, '');
});
