import t from 'tap';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { defaultXdsSocket } from '../../src/agent/grpc-bootstrap.js';
import { tokenExpiresAt } from '../../src/agent/credentials.js';
import { GrpcProcess } from '../proxyless/helpers/child.js';
import { callUntil, expectAlive, expectNoNacks, sleep } from '../proxyless/helpers/calls.js';
import { CLIENT_NS, freePort, startProxylessMesh, TARGET, type ProxylessMesh } from '../proxyless/helpers/mesh.js';
import { XdsTestClient } from '../xds/helpers/xds-client.js';
import { until } from '../helpers/until.js';

/**
 * Certificates on autopilot, compressed: join tokens that live 60 s, SVIDs that live 20 s
 * (renewed after a quarter of it), a grpc-js-xds client and server behind their agents calling all the
 * time (a new channel per call, and one kept channel), and an Envoy-like ADS client on the
 * client agent's socket ACKing everything. After the tokens have expired meshd is closed and
 * started again twice (same data dir); the run goes on until both agents have renewed at least
 * 8 times. No call may fail, the agents never use their tokens again, the workload's xDS
 * streams never end, and the private keys never reach meshd.
 *
 * `npm run soak` runs the same for MESHD_SOAK_MINUTES (default 30), closing meshd every 5 minutes.
 */
const SOAK_MS = Number(process.env.MESHD_SOAK_MINUTES ?? 0) * 60_000;
const TOKEN_TTL_MS = 60_000;
const SVID_TTL_MS = 20_000;
const MIN_RENEWALS = 8;
// The file's own limit: ~2 minutes compressed (more on a loaded machine), the soak as long as asked.
t.setTimeout(SOAK_MS + 600_000);

interface LoopResult { calls: number; failures: number; errors: string[] }


async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * Closes meshd until an agent has failed a renewal (one is due within 5 s: the outage spans a
 * renewal, as a real one would), then starts it again; returns how long after meshd was back the
 * agents that had failed renewed. Held no longer, so every SVID (15 s left at its renewal
 * point) outlives the outage.
 */
async function restartMeshd(t: Tap, mesh: ProxylessMesh): Promise<{ renewMs: number }> {
  const agents = [mesh.agents.server.agent, mesh.agents.client.agent];
  const failures = agents.map((a) => a.status().failures);
  await mesh.stopMeshd();
  await until(() => agents.some((a, i) => a.status().failures > failures[i]!) || undefined, 30_000, 'an agent failing to reach meshd');
  const failed = agents.filter((a, i) => a.status().failures > failures[i]!);
  const renewals = failed.map((a) => a.status().renewals);
  await mesh.startMeshd();
  const back = Date.now();
  await until(() => failed.every((a, i) => a.status().renewals > renewals[i]!) || undefined, 30_000, 'the agents that failed renewing after meshd came back')
    .catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify(failed.map((a) => ({ ...a.status(), now: Date.now() })))}`); });
  const renewMs = Date.now() - back;
  t.comment(`meshd restarted: ${failed.length} agent(s) had failed a renewal; they renewed ${renewMs} ms after it was back`);
  return { renewMs };
}
type Tap = { comment(...m: unknown[]): void };

t.test(`long run (${SOAK_MS > 0 ? `${SOAK_MS / 60_000} min soak` : 'compressed'}): token ${TOKEN_TTL_MS / 1000} s, SVID ${SVID_TTL_MS / 1000} s, meshd restarted after the tokens expired; no call fails`, { timeout: SOAK_MS + 600_000 }, async (t) => {
  const started = Date.now();
  const port = await freePort();
  const mesh = await startProxylessMesh({
    mode: 'STRICT', servers: [{ name: 'greeter-1', port }],
    // Renewed after a quarter of the life: a restart that a loaded machine makes slow (seconds)
    // still ends while the SVIDs have 15 s left.
    ttlMs: SVID_TTL_MS, rotationFraction: 0.25, tokenTtlMs: TOKEN_TTL_MS,
    backoff: { initialMs: 250, maxMs: 4000 },
  });
  const server = new GrpcProcess('server', 'greeter-server.mjs', [String(port), 'greeter-1'], await mesh.bootstrap('server', 'greeter-1', 1));
  const client = new GrpcProcess('client', 'greeter-client.mjs', [], await mesh.bootstrap('client', 'caller', 1));
  const envoyLike = new XdsTestClient(`unix:${defaultXdsSocket(mesh.certDirs.client)}`);
  t.teardown(async () => {
    envoyLike.close();
    await client.stop();
    await server.stop();
    await mesh.close();
  });
  await server.waitFor((l) => l.event === 'bound', 60_000, 'XdsServer serving');
  await client.waitFor((l) => l.event === 'ready', 60_000, 'client');
  await callUntil(client, { target: TARGET }, (l) => l.ok === true, 30_000, 'first call');

  // The Envoy-like sidecar: ADS through the agent, every response ACKed.
  const ads = envoyLike.sotw('ads', { node: { id: `sidecar~127.0.0.1~caller.${CLIENT_NS}~${CLIENT_NS}.svc.cluster.local`, metadata: { NAMESPACE: CLIENT_NS, WORKLOAD_NAME: 'caller' } } });
  let adsEnded: string | undefined;
  let adsResponses = 0;
  void ads.status.then((s) => { adsEnded = `${s.code}: ${s.details}`; });
  ads.subscribe(TypeUrl.Cluster, []);
  ads.subscribe(TypeUrl.Listener, []);
  let stopAds = false;
  const acking = (async () => {
    while (!stopAds && adsEnded === undefined) {
      const r = await ads.next(3_600_000).catch(() => undefined);
      if (!r) return;
      adsResponses += 1;
      ads.ack(r);
    }
  })();
  await until(() => adsResponses >= 2 || undefined, 10_000, 'the Envoy-like client\'s first clusters and listeners');

  await client.request({ op: 'loop-start', loop: 'fresh', target: TARGET, intervalMs: 100, fresh: true });
  await client.request({ op: 'loop-start', loop: 'kept', target: TARGET, intervalMs: 100 });

  const agents = { server: mesh.agents.server.agent, client: mesh.agents.client.agent };
  const token = (await readFile(join(mesh.dir, 'client.token'), 'utf8')).trim();
  const tokenExpiry = tokenExpiresAt(token)!;
  // The restarts must come after the join tokens expired: polled, not slept.
  await until(() => Date.now() > tokenExpiry + 1000 || undefined, TOKEN_TTL_MS + 30_000, 'the join tokens expiring');
  const restarts: number[] = [];
  restarts.push((await restartMeshd(t, mesh)).renewMs);
  restarts.push((await restartMeshd(t, mesh)).renewMs);
  const soakUntil = started + SOAK_MS;
  let nextRestart = Date.now() + 5 * 60_000;
  for (;;) {
    const enough = agents.server.status().renewals >= MIN_RENEWALS && agents.client.status().renewals >= MIN_RENEWALS;
    if (enough && Date.now() >= soakUntil) break;
    if (SOAK_MS > 0 && Date.now() >= nextRestart && Date.now() < soakUntil) {
      restarts.push((await restartMeshd(t, mesh)).renewMs);
      nextRestart = Date.now() + 5 * 60_000;
    }
    if (SOAK_MS === 0 && Date.now() - started > 240_000) throw new Error(`not ${MIN_RENEWALS} renewals within 4 minutes: ${JSON.stringify({ server: agents.server.status(), client: agents.client.status() })}`);
    await sleep(250);
  }
  const fresh = (await client.request({ op: 'loop-stop', loop: 'fresh' })).result as LoopResult;
  const kept = (await client.request({ op: 'loop-stop', loop: 'kept' })).result as LoopResult;
  stopAds = true;

  for (const [name, agent] of Object.entries(agents)) {
    const s = agent.status();
    t.ok(s.renewals >= MIN_RENEWALS, `${name} agent: ${s.renewals} certificates`);
    t.equal(s.renewalsBy.token, 1, `${name} agent: only the first came with the join token, ${s.renewalsBy.svid} with the SVID`);
  }
  t.equal(restarts.length >= 2, true, `meshd restarted ${restarts.length} times after the tokens expired`);
  t.equal(fresh.failures, 0, `${fresh.calls} calls on new channels, none failed${fresh.errors.length ? `: ${fresh.errors.join(' | ')}` : ''}`);
  t.equal(kept.failures, 0, `${kept.calls} calls on a kept channel, none failed${kept.errors.length ? `: ${kept.errors.join(' | ')}` : ''}`);
  t.equal(adsEnded, undefined, `the Envoy-like client's ADS stream never ended (${adsResponses} responses)`);
  // The last push may still be on its way when the loop ends: wait for the ACK, not a moment.
  const cdsNow = () => mesh.meshd.core.connections().find((c) => c.proxyId.startsWith('sidecar~127.0.0.1~caller.'))?.types.find((x) => x.type === 'cds');
  const cds = await until(() => cdsNow()?.status === 'SYNCED' && cdsNow(), 10_000, `the Envoy-like client SYNCED on meshd (now ${cdsNow()?.status ?? 'not connected'})`);
  t.equal(cds.status, 'SYNCED', 'and it is in sync with meshd at the end');

  // The agents' keys stay in their directories: nothing under meshd's data dir holds one.
  const keys = await Promise.all(Object.values(mesh.certDirs).map((d) => readFile(join(d, 'key.pem'), 'utf8')));
  const meshdFiles = await filesUnder(join(mesh.dir, 'meshd-data'));
  let leaked = 0;
  for (const f of meshdFiles) {
    if ((await stat(f)).size > 10_000_000) continue;
    const text = await readFile(f, 'utf8');
    if (keys.some((k) => text.includes(k.split('\n')[1]!))) leaked += 1;
  }
  t.equal(leaked, 0, `no agent key in any of meshd's ${meshdFiles.length} files`);
  expectAlive(t, server);
  expectAlive(t, client);
  await expectNoNacks(t, mesh);
  t.comment(`figures: ${fresh.calls + kept.calls} calls (0 failed allowed), renewals server ${agents.server.status().renewals} client ${agents.client.status().renewals}, `
    + `${restarts.length} meshd restarts, agents renewed ${restarts.join(', ')} ms after meshd was back, ${Math.round((Date.now() - started) / 1000)} s in all`);
  ads.cancel();
  await acking;
});
