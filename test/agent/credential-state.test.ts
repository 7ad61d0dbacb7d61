import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/common/clock.js';
import { startAgent } from '../../src/agent/run-agent.js';
import { chooseCredential, NoCredentialError, tokenExpiresAt } from '../../src/agent/credentials.js';
import { captureLogs } from '../common/log-capture.js';
import { startTestMeshd } from '../e2e/helpers/meshd.js';
import { until } from '../helpers/until.js';

/**
 * What the agent presents to meshd, and what it tells its operator when it has nothing valid
 * left: a log line, meshd_agent_credential_state{credential="none"}, a 503 on /healthz/ready,
 * and retries that go on until a credential is back.
 */

const jwtWithExp = (expSeconds: number): string =>
  `${Buffer.from('{"alg":"ES256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ exp: expSeconds })).toString('base64url')}.sig`;

t.test('credential choice: a valid SVID first, the token only without one, and a precise refusal when neither is usable', async (t) => {
  const svid = { keyPem: 'k', chainPem: 'c', notBefore: 1_000, notAfter: 10_000 };
  const token = { token: jwtWithExp(20) };
  t.match(chooseCredential(5_000, svid, false, { error: 'unread' }), { kind: 'svid' }, 'valid SVID: presented, the token file is not needed');
  t.match(chooseCredential(10_000, svid, false, token), { kind: 'token', expiresAt: 20_000 }, 'at notAfter the SVID is expired: the token');
  t.match(chooseCredential(500, svid, false, token), { kind: 'token' }, 'before notBefore: the token');
  t.match(chooseCredential(5_000, svid, true, token), { kind: 'token' }, 'an SVID meshd refused: the token');
  t.match(chooseCredential(5_000, undefined, false, token), { kind: 'token' }, 'first start: the token');
  t.match(chooseCredential(5_000, undefined, false, { token: 'opaque' }), { kind: 'token', expiresAt: undefined }, 'a token that is not a JWT is tried; meshd decides');
  t.throws(() => chooseCredential(20_000, svid, false, token), new NoCredentialError(
    'no valid credential for meshd: the certificate expired at 1970-01-01T00:00:10.000Z, and the token in the token file expired at 1970-01-01T00:00:20.000Z; issue a new one (meshd token issue) into the token file'));
  t.throws(() => chooseCredential(5_000, undefined, false, { error: 'cannot read --token-file /x: ENOENT' }),
    new NoCredentialError('no valid credential for meshd: no certificate yet, and cannot read --token-file /x: ENOENT'));
  t.equal(tokenExpiresAt('not.a.jwt'), undefined);
  t.equal(tokenExpiresAt(jwtWithExp(1234)), 1_234_000);
});

t.test('with neither a valid SVID nor a valid token the agent says so (log, metric, /healthz/ready 503) and keeps retrying; a new token brings it back', async (t) => {
  // meshd and the agent on one ManualClock: the token expires, then the SVID, without waiting.
  const clock = new ManualClock(Date.now());
  const meshd = await startTestMeshd({ clock });
  t.teardown(() => meshd.close());
  const dir = await mkdtemp(join(tmpdir(), 'meshd-agent-state-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'root.pem'), meshd.rootsPem());
  await writeFile(join(dir, 'token'), await meshd.token('shop', 'web', 60_000), { mode: 0o600 });
  const logs = captureLogs();
  const running = await startAgent({
    namespace: 'shop', serviceAccount: 'web', trustDomain: 'cluster.local',
    tokenFile: join(dir, 'token'), outDir: join(dir, 'out'), caRootFile: join(dir, 'root.pem'),
    meshdAddress: `127.0.0.1:${meshd.ports.secureGrpc}`, ttlMs: 10 * 60_000,
    backoff: { initialMs: 50, maxMs: 400 }, random: () => 0.5,
    statusAddress: '127.0.0.1:0', logger: logs.logger, clock,
  });
  t.teardown(() => running.stop());
  clock.advance(0);
  await running.ready();
  const agent = running.agent;
  const status = (path: string) => fetch(`http://127.0.0.1:${running.statusPort}${path}`).then(async (r) => ({ code: r.status, body: await r.text() }));
  const state = async (): Promise<string> => {
    const { body } = await status('/metrics');
    return [...body.matchAll(/^meshd_agent_credential_state\{credential="(\w+)"\} 1$/gm)].map((m) => m[1]).join(',');
  };
  t.match(await status('/healthz/ready'), { code: 200, body: /^ready: SVID spiffe:\/\/cluster.local\/ns\/shop\/sa\/web valid until / });
  t.equal(await state(), 'svid');
  t.match((await status('/metrics')).body, new RegExp(`^meshd_agent_certificate_expiry_timestamp_seconds ${Math.floor(agent.certificate()!.notAfter / 1000)}$`, 'm'));

  // Past the SVID's end; the one-minute token expired long before.
  const notAfter = agent.certificate()!.notAfter;
  clock.set(notAfter + 1);
  // The renewal due at half-life fires on the way with the SVID, which meshd (past notAfter)
  // refuses; the retry after it has nothing valid to present.
  await until(() => agent.status().failures >= 1 && agent.status().nextAttemptAt, 10_000, 'the renewal on the way');
  t.equal(agent.status().credential, 'svid');
  clock.set(agent.status().nextAttemptAt!);
  await until(() => agent.status().credential === 'none' || undefined, 10_000, 'the agent finding no credential');
  const line = logs.lines.find((l) => l.level === 50 && /no valid credential for meshd/.test(String(l.msg)));
  t.ok(line, 'an error line says it plainly');
  t.match(String(line?.reason), /the certificate expired at .*, and the token in the token file expired at .*issue a new one \(meshd token issue\)/, `with both reasons: ${String(line?.reason)}`);
  t.equal(await state(), 'none', 'meshd_agent_credential_state{credential="none"} 1');
  const notReady = await status('/healthz/ready');
  t.equal(notReady.code, 503, 'not ready');
  t.match(notReady.body, /^not ready: the certificate expired at .*; no valid credential for meshd: .*token in the token file expired/);
  t.notMatch(notReady.body + (await status('/metrics')).body, /BEGIN|eyJ/, 'no key or token in a reply');

  // It keeps trying (each attempt due on the clock), and logs the repeated reason sparingly.
  const failures = agent.status().failures;
  for (let i = 0; i < 6; i++) {
    const due = agent.status().nextAttemptAt;
    if (due === undefined) { i--; await new Promise((r) => setTimeout(r, 10)); continue; }
    t.ok(due - clock.now() <= 400, `retry ${i + 1} due within the backoff cap (${due - clock.now()} ms)`);
    clock.set(due);
    await until(() => agent.status().failures > failures + i || undefined, 10_000, `attempt ${i + 1}`);
  }
  t.equal(logs.lines.filter((l) => /no valid credential for meshd/.test(String(l.msg))).length, 1, 'the state change is logged once, not per attempt');

  // An operator puts a new join token in place: the next attempt gets a certificate.
  await writeFile(join(dir, 'token'), await meshd.token('shop', 'web', 60_000));
  await until(() => agent.status().nextAttemptAt, 10_000, 'the next attempt scheduled');
  clock.set(agent.status().nextAttemptAt!);
  await until(() => agent.status().credential === 'token' && agent.status().lastError === undefined || undefined, 10_000, 'a certificate with the new token');
  t.equal(await state(), 'svid', 'back to presenting the SVID');
  t.match(await status('/healthz/ready'), { code: 200 });
  t.same(agent.status().renewalsBy, { svid: 0, token: 2 });
});
