import t from 'tap';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/logger.js';
import { ManualClock, systemClock } from '../../src/common/clock.js';
import { MeshdAgent, type AgentOptions } from '../../src/agent/agent.js';
import { CERT_CHAIN_FILE, DATA_LINK, KEY_FILE, ROOT_CERT_FILE, writeCertificateSet } from '../../src/agent/cert-dir.js';
import { leafSignedWithoutChecks, rsaKeyWithExponent } from '../ca/helpers.js';
import { captureLogs } from '../common/log-capture.js';
import { startTestMeshd, type TestMeshd } from '../e2e/helpers/meshd.js';
import { freePort } from '../proxyless/helpers/mesh.js';
import { until } from '../helpers/until.js';

/**
 * `meshd agent` against a real in-process meshd over TLS: issuance, renewal, the token file
 * re-read for every request, backoff while meshd is away, reuse of valid files, trust in meshd.
 * When renewals are the point, the agent's clock (and meshd's, where both must agree) is a
 * ManualClock: a renewal or retry happens when the test moves the clock to it, not after a wait.
 */


/** The delay of the agent's one pending timer (its next renewal or retry). */
function pendingDelay(clock: ManualClock): number {
  const delays = clock.timerDelays();
  if (delays.length !== 1) throw new Error(`expected the agent's one timer, found ${delays.length}`);
  return delays[0]!;
}

async function workdir(t: Tap): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-agent-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
type Tap = { teardown(fn: () => unknown): void };

function options(meshd: { ports: { secureGrpc: number } } | { address: string }, dir: string, extra: Partial<AgentOptions> = {}): AgentOptions {
  return {
    namespace: 'shop', serviceAccount: 'web', trustDomain: 'cluster.local',
    tokenFile: join(dir, 'token'), outDir: join(dir, 'out'), caRootFile: join(dir, 'root.pem'),
    meshdAddress: 'address' in meshd ? meshd.address : `127.0.0.1:${meshd.ports.secureGrpc}`,
    meshdSpiffeId: 'spiffe://cluster.local/ns/istio-system/sa/meshd',
    keyType: 'ec-p256', ttlMs: 3_600_000, rotation: { fraction: 0.5, jitter: 0.01 },
    backoff: { initialMs: 50, maxMs: 400 },
    logger: silentLogger(), clock: systemClock,
    ...extra,
  };
}

async function prepare(meshd: TestMeshd, dir: string, tokenTtlMs?: number): Promise<void> {
  await writeFile(join(dir, 'root.pem'), meshd.rootsPem());
  await writeFile(join(dir, 'token'), await meshd.token('shop', 'web', tokenTtlMs), { mode: 0o600 });
}

/** meshd, a work dir with its root and a token, and an agent that has written its first set. */
async function readyAgent(t: Tap, extra: Partial<AgentOptions> = {}): Promise<{ meshd: TestMeshd; dir: string; agent: MeshdAgent }> {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const dir = await workdir(t);
  await prepare(meshd, dir);
  const agent = new MeshdAgent(options(meshd, dir, extra));
  t.teardown(() => agent.stop());
  await agent.start();
  if (extra.clock instanceof ManualClock) extra.clock.advance(0); // the first request is due at once
  await agent.ready();
  return { meshd, dir, agent };
}

const leafOf = async (dir: string): Promise<X509Certificate> => new X509Certificate(await readFile(join(dir, 'out', CERT_CHAIN_FILE)));

t.test('issues the workload SVID into the directory: own key, caller identity, root bundle, 0600 key', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const dir = await workdir(t);
  await prepare(meshd, dir);
  const agent = new MeshdAgent(options(meshd, dir, { keyType: 'rsa-2048' }));
  t.teardown(() => agent.stop());
  await agent.start();
  await agent.ready();
  const leaf = await leafOf(dir);
  t.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/web');
  t.equal(leaf.publicKey.asymmetricKeyType, 'rsa', '--key-type rsa-2048');
  t.ok(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(await readFile(join(dir, 'out', KEY_FILE)))), 'key.pem is the key of cert-chain.pem');
  t.equal(await readFile(join(dir, 'out', ROOT_CERT_FILE), 'utf8'), meshd.rootsPem(), 'root-cert.pem is the bundle');
  t.equal((await stat(join(dir, 'out', KEY_FILE))).mode & 0o777, 0o600);
  t.equal(agent.status().renewals, 1);
});

t.test('renews at the configured fraction with a fresh key each time, presenting its SVID: the token file is needed only for the first certificate', async (t) => {
  // meshd and the agent share a ManualClock that starts 9 minutes in the past: TLS checks the
  // presented SVID against real time, so the clock may run at most meshd's 2 minute backdate ahead
  // of it. With 10 minute certificates that leaves room for three renewals with the SVID.
  const clock = new ManualClock(Date.now() - 9 * 60_000);
  const meshd = await startTestMeshd({ clock });
  t.teardown(() => meshd.close());
  const dir = await workdir(t);
  await prepare(meshd, dir, 60_000); // the join token lives one minute
  const serials: string[] = [];
  const keys = new Set<string>();
  const agent = new MeshdAgent(options(meshd, dir, {
    ttlMs: 10 * 60_000, clock,
    onRenewed: (c) => { serials.push(c.serialHex); keys.add(c.set.keyPem); },
  }));
  t.teardown(() => agent.stop());
  const receivedAt = clock.now();
  await agent.start();
  clock.advance(0); // the first request is due at once
  await agent.ready();
  t.same(agent.status().renewalsBy, { svid: 0, token: 1 }, 'the first certificate was obtained with the join token');
  const first = agent.certificate()!;
  // Half the lifetime counted from receipt (not from the backdated notBefore), ±1 % jitter.
  const left = first.notAfter - receivedAt;
  t.ok(first.renewAt >= receivedAt + Math.floor(0.49 * left) && first.renewAt <= receivedAt + Math.ceil(0.51 * left),
    `renewal due at half the lifetime (${first.renewAt - receivedAt} ms after receipt, lifetime ${left} ms)`);
  // The token file now holds garbage, and the token had expired anyway: renewals need neither.
  await writeFile(join(dir, 'token'), 'not a token');
  const failuresBefore = Number(/^citadel_server_authentication_failure_count (\d+)/m.exec(await meshd.metricsText())?.[1] ?? 0);
  for (let n = 2; n <= 4; n++) {
    const due = agent.certificate()!.renewAt;
    clock.set(due - 1);
    t.ok(clock.timerDelays().includes(1) && serials.length === n - 1, `certificate ${n}: one millisecond before its renewal is due, it is still pending`);
    clock.set(due);
    await until(() => serials.length >= n || undefined, 15_000, `certificate ${n}`);
  }
  t.ok(clock.now() > receivedAt + 60_000, 'the join token had expired before the first renewal');
  t.same(agent.status().renewalsBy, { svid: 3, token: 1 }, 'every renewal presented the SVID');
  t.equal(agent.status().failures, 0, 'no renewal failed');
  t.equal(Number(/^citadel_server_authentication_failure_count (\d+)/m.exec(await meshd.metricsText())?.[1] ?? 0), failuresBefore, 'meshd refused nothing');
  t.equal(new Set(serials).size, serials.length, 'every renewal is a new certificate');
  t.equal(keys.size, serials.length, 'and a new key');
  const leaf = await leafOf(dir);
  t.equal(leaf.serialNumber.toLowerCase().replace(/^0+/, ''), agent.certificate()!.serialHex, 'the files hold the latest');
});

t.test('an expired SVID falls back to the token file, re-read for every request (istio#26225): a bad token fails with meshd\'s reason, keeps the files, and recovers when fixed', async (t) => {
  const clock = new ManualClock(Date.now());
  const meshd = await startTestMeshd({ clock });
  t.teardown(() => meshd.close());
  const dir = await workdir(t);
  await prepare(meshd, dir);
  const agent = new MeshdAgent(options(meshd, dir, { clock, random: () => 0.5 }));
  t.teardown(() => agent.stop());
  await agent.start();
  clock.advance(0);
  await agent.ready();
  const version = await readlink(join(dir, 'out', DATA_LINK));
  await writeFile(join(dir, 'token'), 'garbage');
  const notAfter = agent.certificate()!.notAfter;
  // Straight past the certificate's end: the renewal due at half-life fires on the way with the
  // SVID still valid by its own time, and meshd, already past notAfter, refuses it as expired.
  clock.set(notAfter + 1);
  // meshd's own timers run on this clock too: the agent's is the one its status names.
  const retryIn = (): number | undefined => (agent.status().nextAttemptAt === undefined ? undefined : agent.status().nextAttemptAt! - clock.now());
  await until(() => (agent.status().failures >= 1 && retryIn() !== undefined) || undefined, 10_000, 'the renewal on the way');
  t.match(agent.status().lastError, /UNAUTHENTICATED: .*client certificate has expired \(notAfter /, 'meshd refused the SVID, expired by its clock');
  t.equal(retryIn(), 37, 'retried after the first backoff step (50 ms, the draw taking a quarter off)');
  clock.advance(37);
  await until(() => (agent.status().failures >= 2 && retryIn() !== undefined) || undefined, 10_000, 'the retry');
  t.equal(agent.status().credential, 'token', 'the expired SVID is not presented again: the token file is');
  t.match(agent.status().lastError, /UNAUTHENTICATED: request authenticate failure/, 'the reason is meshd\'s');
  t.equal(await readlink(join(dir, 'out', DATA_LINK)), version, 'the files were not touched');
  t.equal(retryIn(), 75);
  await writeFile(join(dir, 'token'), await meshd.token('shop', 'web'));
  clock.advance(75);
  await until(() => agent.status().lastError === undefined || undefined, 10_000, 'recovery');
  t.not(await readlink(join(dir, 'out', DATA_LINK)), version, 'a new set after the token was fixed');
  t.same(agent.status().renewalsBy, { svid: 0, token: 2 }, 'both certificates came with the token');
});

t.test('meshd unreachable: retries with backoff, keeps the valid files in place, recovers when meshd returns; a restarted agent reuses valid files', async (t) => {
  const port = await freePort();
  const dataDir = await workdir(t);
  const meshd1 = await startTestMeshd({ dataDir, secureGrpcAddr: `127.0.0.1:${port}` });
  const dir = await workdir(t);
  await prepare(meshd1, dir);
  const first = new MeshdAgent(options(meshd1, dir));
  await first.start();
  await first.ready();
  await first.stop();
  const before = await readFile(join(dir, 'out', CERT_CHAIN_FILE), 'utf8');
  const csrCount = (text: string): number => Number(/^citadel_server_csr_count (\d+)/m.exec(text)?.[1] ?? 0);
  const countBefore = csrCount(await meshd1.metricsText());

  // A restarted agent finds a valid set and asks meshd for nothing.
  const restarted = new MeshdAgent(options(meshd1, dir));
  await restarted.start();
  await restarted.ready();
  t.equal(restarted.status().renewals, 0, 'no new certificate');
  t.equal(csrCount(await meshd1.metricsText()), countBefore, 'no CSR reached meshd');
  t.equal(restarted.certificate()!.set.certChainPem, before);
  await restarted.stop();

  await meshd1.close();
  const clock = new ManualClock(Date.now());
  const away = new MeshdAgent(options({ address: `127.0.0.1:${port}` }, dir, { clock, random: () => 0.5 }));
  t.teardown(() => away.stop());
  await away.start();
  void away.renewNow();
  // Backoff 50 ms doubling to at most 400 ms, the draw at the middle of the jitter: each retry happens when the clock reaches it.
  const delays: number[] = [];
  for (let failures = 1; failures <= 5; failures++) {
    await until(() => (away.status().failures >= failures && clock.timerDelays().length === 1) || undefined, 20_000, `failed attempt ${failures}`);
    delays.push(pendingDelay(clock));
    if (failures < 5) clock.advance(delays.at(-1)!);
  }
  t.same(delays, [37, 75, 150, 300, 300], 'exponential backoff (50 ms doubling, capped at 400 ms), each wait shortened by the jitter draw');
  t.match(away.status().lastError, /UNAVAILABLE/, `meshd away: ${away.status().lastError}`);
  t.equal(await readFile(join(dir, 'out', CERT_CHAIN_FILE), 'utf8'), before, 'the still-valid certificate stays in place');

  const meshd2 = await startTestMeshd({ dataDir, secureGrpcAddr: `127.0.0.1:${port}` });
  t.teardown(() => meshd2.close());
  clock.advance(delays.at(-1)!);
  await until(() => away.status().renewals >= 1 || undefined, 20_000, 'renewal after meshd returned');
  t.not(await readFile(join(dir, 'out', CERT_CHAIN_FILE), 'utf8'), before, 'renewed once meshd was back');
});

t.test('an existing set whose key is RSA with exponent 3 is not adopted, even signed by meshd\'s own root: a new key and certificate replace it', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const dir = await workdir(t);
  await prepare(meshd, dir);
  const rootDir = join(meshd.dataDir, 'ca/roots/root-1');
  const root = {
    certDer: new X509Certificate(await readFile(join(rootDir, 'ca-cert.pem'))).raw,
    key: { privateKey: createPrivateKey(await readFile(join(rootDir, 'ca-key.pem'))), keyType: 'ec-p256' as const },
  };
  const e3 = rsaKeyWithExponent(3);
  const planted = {
    certChainPem: await leafSignedWithoutChecks(root, 'spiffe://cluster.local/ns/shop/sa/web', e3.spki),
    keyPem: e3.key.export({ type: 'pkcs8', format: 'pem' }) as string,
    rootCertPem: meshd.rootsPem(),
  };
  await writeCertificateSet(join(dir, 'out'), planted, Date.now());
  const logs = captureLogs();
  const agent = new MeshdAgent(options(meshd, dir, { logger: logs.logger }));
  t.teardown(() => agent.stop());
  await agent.start();
  await agent.ready();
  t.equal(agent.status().renewals, 1, 'a new certificate was requested');
  t.match(logs.lines.map((l) => l.err).join('\n'), /chain certificate 1 has a refused key: RSA public exponent 3 is not accepted \(only 65537\)/, 'the log says why the set was not reused');
  const leaf = await leafOf(dir);
  t.equal(leaf.publicKey.asymmetricKeyType, 'ec', 'the agent\'s own EC P-256 key now');
  t.not(await readFile(join(dir, 'out', KEY_FILE), 'utf8'), planted.keyPem, 'the e = 3 key is gone from key.pem');
});

t.test('trust in meshd: a wrong --ca-root is refused before anything is sent, and no root at all is a clear error', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const other = await startTestMeshd();
  t.teardown(() => other.close());
  const dir = await workdir(t);
  await prepare(meshd, dir);
  await writeFile(join(dir, 'root.pem'), other.rootsPem());
  const wrong = new MeshdAgent(options(meshd, dir));
  t.teardown(() => wrong.stop());
  await wrong.start();
  await until(() => wrong.status().failures >= 1 || undefined, 5000, 'a failure');
  await wrong.stop();
  t.match(wrong.status().lastError, /UNAVAILABLE/, `refused: ${wrong.status().lastError?.slice(0, 120)}`);
  await t.rejects(stat(join(dir, 'out', DATA_LINK)), 'nothing written');

  const none = new MeshdAgent(options(meshd, dir, { caRootFile: undefined }));
  await none.start();
  await until(() => none.status().failures >= 1 || undefined, 5000, 'a failure');
  await none.stop();
  t.match(none.status().lastError, /no trust anchor for meshd: pass --ca-root/);

  // The bundle an agent saved stays its anchor, even beside a certificate that expired meanwhile.
  await writeFile(join(dir, 'root.pem'), meshd.rootsPem());
  const shortLived = new MeshdAgent(options(meshd, dir, { ttlMs: 1000 }));
  await shortLived.start();
  await shortLived.ready();
  await shortLived.stop();
  // Restarted a minute later by its own clock: the one-second certificate on disk has expired.
  const later = new ManualClock(Date.now() + 60_000);
  t.ok(later.now() > shortLived.certificate()!.notAfter, 'the saved certificate has expired');
  const restarted = new MeshdAgent(options(meshd, dir, { caRootFile: undefined, clock: later }));
  t.teardown(() => restarted.stop());
  await restarted.start();
  later.advance(0);
  await until(() => restarted.status().renewals >= 1 || undefined, 10_000, 'renewal with the saved bundle as the only anchor');
  t.pass('an agent restarted after its certificate expired trusts meshd through the bundle it saved');
});

t.test('a new root in meshd\'s bundle reaches root-cert.pem with the next certificate', async (t) => {
  const { meshd, dir, agent } = await readyAgent(t);
  const countRoots = async (): Promise<number> => ((await readFile(join(dir, 'out', ROOT_CERT_FILE), 'utf8')).match(/BEGIN CERTIFICATE/g) ?? []).length;
  t.equal(await countRoots(), 1);
  await meshd.ca.prepareNextRoot();
  t.equal(meshd.ca.trustBundle().rootsPem.length, 2, 'meshd now trusts two roots');
  await agent.renewNow();
  t.equal(await countRoots(), 2, 'root-cert.pem holds both roots');
  t.equal(await readFile(join(dir, 'out', ROOT_CERT_FILE), 'utf8'), meshd.rootsPem());
});
