import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { runMeshd } from '../e2e/helpers/serve-process.js';
import type { TestMeshd } from '../e2e/helpers/meshd.js';
import { csrWithToken, type CsrOutcome } from '../e2e/helpers/csr-outcome.js';
import { startPostgres } from '../store/helpers/postgres.js';
import { fastStore, startReplica, storeKeyFile } from './helpers.js';
import { parseExposition, total } from '../telemetry/helpers/exposition.js';

/**
 * The join-token ledger shared by replicas through the store: a single-use token presented to
 * two replicas at the same moment gets exactly one certificate, and a token revoked with
 * `meshd token revoke --store` (the real CLI) is refused by every replica at its next use, with
 * nothing minted. Real PostgreSQL, real TLS, meshd's CSR API.
 */
const API = 'spiffe://cluster.local/ns/payments/sa/payments-api';
const pg = await startPostgres(t);

/** One CreateCertificate with the token on a replica: the certificate's URI, or the refusal. */
const csrWith = (replica: TestMeshd, token: string): Promise<CsrOutcome> => csrWithToken(replica, token, API);

async function twoReplicas(t: Test): Promise<{ a: TestMeshd; b: TestMeshd; store: string[] }> {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const a = await startReplica(t, fastStore(url, keyFile, 'replica-a'));
  const b = await startReplica(t, fastStore(url, keyFile, 'replica-b'));
  return { a, b, store: ['--store', url, '--store-key-file', keyFile] };
}

t.test('a single-use token sent to two replicas at once gets one certificate; the other replica refuses it as reused', async (t) => {
  const { a, b } = await twoReplicas(t);
  for (let round = 0; round < 5; round++) {
    const { token, id } = await a.tokens.issue({ namespace: 'payments', serviceAccount: 'payments-api' }, 600_000, { singleUse: true });
    const outcomes = await Promise.all([csrWith(a, token), csrWith(b, token)]);
    const granted = outcomes.filter((o): o is string => typeof o === 'string');
    const refused = outcomes.filter((o): o is { code: grpc.status; details: string } => typeof o !== 'string');
    t.same(granted, [API], `round ${round}: exactly one replica issued a certificate`);
    t.equal(refused.length, 1, `round ${round}: the other refused`);
    t.equal(refused[0]?.code, grpc.status.UNAUTHENTICATED);
    t.match(refused[0]?.details, new RegExp(`token ${id} is single-use and has already been used`));
  }
});

t.test('`meshd token revoke --store` is refused by every replica at the token\'s next use, nothing minted', async (t) => {
  const { a, b, store } = await twoReplicas(t);
  const { token, id } = await a.tokens.issue({ namespace: 'payments', serviceAccount: 'payments-api' }, 600_000);
  t.equal(await csrWith(a, token), API, 'before: replica a issues with it');
  t.equal(await csrWith(b, token), API, 'before: so does replica b');

  const revoked = await runMeshd(['token', 'revoke', id, ...store]);
  t.equal(revoked.code, 0, revoked.stderr);
  t.match(revoked.stderr, `revoked token ${id}`);
  const issued = async (): Promise<number[]> => Promise.all([a, b].map(async (r) => total(parseExposition(await r.metricsText()), 'citadel_server_success_cert_issuance_count')));
  const issuedBefore = await issued();
  for (const [name, replica] of [['a', a], ['b', b]] as const) {
    const got = await csrWith(replica, token);
    if (typeof got === 'string') {
      t.fail(`replica ${name} issued ${got} with a revoked token`);
      continue;
    }
    t.equal(grpc.status[got.code], 'UNAUTHENTICATED', `replica ${name} refuses it`);
    t.match(got.details, new RegExp(`token ${id} has been revoked`), `replica ${name} says it was revoked`);
  }
  t.same(await issued(), issuedBefore, 'and neither minted anything');

  const again = await runMeshd(['token', 'revoke', id, ...store]);
  t.equal(again.code, 0, 'revoking twice is not an error');
  const bad = await runMeshd(['token', 'revoke', 'not a token id', ...store]);
  t.not(bad.code, 0, 'an id meshd never issues is refused');
  t.match(bad.stderr, /is not a token id/);
});

t.test('PostgreSQL stopped: a revocation read before is still enforced, other tokens work, a single-use token is refused as uncheckable', async (t) => {
  const { a, store } = await twoReplicas(t);
  const revokedToken = await a.tokens.issue({ namespace: 'payments', serviceAccount: 'payments-api' }, 600_000);
  const revoked = await runMeshd(['token', 'revoke', revokedToken.id, ...store]);
  t.equal(revoked.code, 0, revoked.stderr);
  // The replica reads the revocations at start and at token uses; one use brings this one in.
  const first = await csrWith(a, revokedToken.token);
  t.match(typeof first === 'string' ? first : first.details, /has been revoked/, 'refused while the store is up');
  const plain = await a.tokens.issue({ namespace: 'payments', serviceAccount: 'payments-api' }, 600_000);
  const once = await a.tokens.issue({ namespace: 'payments', serviceAccount: 'payments-api' }, 600_000, { singleUse: true });

  await pg.stop();
  t.teardown(async () => { await pg.start().catch(() => undefined); });
  const during = await csrWith(a, revokedToken.token);
  t.match(typeof during === 'string' ? during : during.details, new RegExp(`token ${revokedToken.id} has been revoked`), 'the revoked token is still refused with the store down');
  t.equal(await csrWith(a, plain.token), API, 'a token that was never revoked still gets a certificate');
  const single = await csrWith(a, once.token);
  t.match(typeof single === 'string' ? single : single.details, new RegExp(`token ${once.id} cannot be checked: .*store is unreachable`), 'a single-use token cannot be recorded, so it is refused, saying why');
  await pg.start();
});
