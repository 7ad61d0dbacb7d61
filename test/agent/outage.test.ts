import t from 'tap';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { AGENT_BACKOFF } from '../../src/common/defaults.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { startAgent } from '../../src/agent/run-agent.js';
import { tokenExpiresAt } from '../../src/agent/credentials.js';
import { startTestMeshd, type TestMeshd } from '../e2e/helpers/meshd.js';
import { XdsTestClient, type SotwResponse } from '../xds/helpers/xds-client.js';
import { CLIENT_NS, freePort, workloadsYaml } from '../proxyless/helpers/mesh.js';
import { until } from '../helpers/until.js';

/**
 * meshd down for longer than the join token's lifetime but shorter than the SVID's, then started
 * again on the same data dir: the agent renews with its SVID as soon as its next retry comes due
 * (within AGENT_BACKOFF.maxMs, 4 s, of meshd being back) and the workload's xDS stream, open
 * through the outage, is served by meshd again; nobody touches the token file.
 *
 * meshd and the agent share a ManualClock, started 5 minutes in the past: the outage takes 6
 * minutes of that clock and none of the test's time, and TLS (which checks the presented SVID
 * against real time) still accepts every certificate, since the clock never runs more than
 * meshd's 2 minute backdate ahead of real time.
 */

// meshd started twice: minutes on a loaded machine.
t.setTimeout(240_000);

const NODE = { id: `sidecar~127.0.0.1~caller.${CLIENT_NS}~${CLIENT_NS}.svc.cluster.local`, metadata: { NAMESPACE: CLIENT_NS, WORKLOAD_NAME: 'caller' } };

t.test('meshd away longer than the join token lives: the agent renews with its SVID within 4 s of meshd being back, and the workload\'s xDS stream re-syncs', async (t) => {
  const clock = new ManualClock(Date.now() - 5 * 60_000);
  const dir = await mkdtemp(join(tmpdir(), 'meshd-outage-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const configDir = join(dir, 'config');
  await mkdir(configDir);
  await writeFile(join(configDir, 'workloads.yaml'), workloadsYaml([]));
  const port = await freePort();
  const meshdOptions = { clock, configDir, dataDir: join(dir, 'data'), secureGrpcAddr: `127.0.0.1:${port}` };
  let meshd: TestMeshd = await startTestMeshd(meshdOptions);
  t.teardown(() => meshd.close());
  await writeFile(join(dir, 'root.pem'), meshd.rootsPem());
  const token = await meshd.token(CLIENT_NS, 'caller', 60_000);
  await writeFile(join(dir, 'token'), token, { mode: 0o600 });
  const socket = join(dir, 'xds.sock');
  const running = await startAgent({
    namespace: CLIENT_NS, serviceAccount: 'caller', trustDomain: 'cluster.local',
    tokenFile: join(dir, 'token'), outDir: join(dir, 'out'), caRootFile: join(dir, 'root.pem'),
    meshdAddress: `127.0.0.1:${port}`, ttlMs: 10 * 60_000, xdsSocket: socket,
    logger: silentLogger(), clock,
  });
  t.teardown(() => running.stop());
  const agent = running.agent;
  clock.advance(0);
  await running.ready();
  t.same(agent.status().renewalsBy, { svid: 0, token: 1 }, 'first certificate with the join token');
  const first = agent.certificate()!;

  const workload = new XdsTestClient(`unix:${socket}`);
  t.teardown(() => workload.close());
  const ads = workload.sotw('ads', { node: NODE });
  let ended: string | undefined;
  void ads.status.then((s) => { ended = `${s.code} ${s.details}`; });
  ads.subscribe(TypeUrl.Cluster, []);
  const before = await ads.next(10_000);
  ads.ack(before);

  await meshd.close();
  // Six minutes of outage on the clock, moved from one due attempt to the next (each attempt is
  // real I/O that fails at once: nothing listens on meshd's port).
  const outageEnd = clock.now() + 6 * 60_000;
  let attempts = 0;
  while (clock.now() < outageEnd) {
    const failures = agent.status().failures;
    const next = agent.status().nextAttemptAt;
    if (next === undefined) { await until(() => agent.status().nextAttemptAt !== undefined, 10_000, 'the next attempt scheduled'); continue; }
    clock.set(Math.min(next, outageEnd));
    if (next <= outageEnd && next >= first.renewAt) {
      attempts += 1;
      await until(() => agent.status().failures > failures || undefined, 10_000, `attempt ${attempts} failing with meshd away`);
    }
  }
  t.ok(attempts >= 10, `the agent kept trying while meshd was away (${attempts} attempts)`);
  t.ok(tokenExpiresAt(token)! < clock.now(), 'the join token has expired');
  t.ok(first.notAfter > clock.now(), 'the SVID has not');
  t.match(agent.status().lastError, /UNAVAILABLE/);
  t.equal(ended, undefined, 'the workload\'s xDS stream stayed open');

  // meshd back on the same data dir; no operator action.
  meshd = await startTestMeshd(meshdOptions);
  const renewIn = agent.status().nextAttemptAt! - clock.now();
  t.ok(renewIn <= AGENT_BACKOFF.maxMs, `the agent's next attempt is due ${renewIn} ms after meshd is back`);
  // Everything the agent has pending within its backoff cap runs: the renewal and the xDS proxy's reconnect.
  clock.advance(AGENT_BACKOFF.maxMs);
  await until(() => agent.status().renewalsBy.svid >= 1 || undefined, 10_000, 'a renewal with the SVID');
  t.same(agent.status().renewalsBy, { svid: 1, token: 1 }, 'renewed with the SVID: the expired token was never needed');
  t.not(agent.certificate()!.serialHex, first.serialHex, 'a new certificate');
  t.equal(agent.status().lastError, undefined);

  let resynced: SotwResponse;
  for (;;) {
    resynced = await ads.next(10_000);
    ads.ack(resynced);
    if (!resynced.nonce.startsWith('agent-') && resynced.type_url === TypeUrl.Cluster) break;
  }
  t.equal(resynced.version_info, before.version_info, 'meshd answers the resubscription: same clusters as before the outage');
  await until(() => meshd.core.connections().some((c) => c.proxyId === NODE.id && c.types.find((x) => x.type === 'cds')?.versionAcked === before.version_info) || undefined,
    10_000, 'meshd seeing the workload ACK');
  t.equal(ended, undefined, 'the workload never saw its stream end');
});
