/**
 * npm run bench:sds [-- --proxies 10000 --connections 100 --separate 1000 --identities 200 --tls --no-storm --no-reconnect --no-ceiling --cpu-prof]
 *
 * meshd's SDS under a fleet (issue 3, "Performance"). The server runs in its own process
 * (bench/lib/meshd-host.ts: startMeshd, as `meshd serve` wires it, silent logs, loopback
 * ports); a separate load process (bench/lib/sds-load.ts) plays the proxies. Scenarios:
 *
 *  A. N proxies (default 10,000) as StreamSecrets streams over C HTTP/2 connections
 *     (default 100), each proxy with its own node id (so its own key pair and SVID) and a
 *     bearer token of one of `identities` service accounts; subscribe default + ROOTCA, ACK.
 *     Prints the time until every proxy holds both, p50/p99 first-secret latency and the
 *     server's RSS per proxy; then a rotation storm: the server's clock is moved past every
 *     SVID's due time at once (the jitter meshd adds on purpose would otherwise spread it),
 *     so all N are re-issued and pushed in one sweep; prints the time from the first rotated
 *     SVID received to the last and the worst event-loop delay inside the server meanwhile.
 *     Then every proxy drops and reconnects (same node ids): SVIDs come from the cache, so
 *     this row is meshd's per-stream cost without signing (--no-reconnect skips it).
 *  B. M proxies (default 1,000) each on its own HTTP/2 connection, as separate Envoys are;
 *     then they reconnect (SVIDs cached), then M new proxies (new node ids, so new SVIDs)
 *     connect to the now-warm server: the first row pays the young process's unoptimised code.
 *
 * Ceiling, in the same run, for A and B: a bare grpc-js server (bench/lib/bare-server.ts,
 * same server options, no auth, no core) writing the very response bytes meshd sent to the
 * same streams from the same load process.
 */
import { parseArgs } from 'node:util';
import type { Child } from './lib/ipc.js';
import { BARE_SERVER, Children, MESHD_HOST, runBench, serverArgs, sleep } from './lib/orchestrator.js';
import { machineNote, rssBytes } from './lib/proc-stats.js';
import { kb, ms, printTable, summarize, type Row } from './lib/stats.js';
import type { HostStarted, LoopDelay } from './lib/meshd-host.js';
import type { SdsOpenResult } from './lib/sds-load.js';

const { values: flags } = parseArgs({
  options: {
    proxies: { type: 'string', default: '10000' },
    connections: { type: 'string', default: '100' },
    separate: { type: 'string', default: '1000' },
    identities: { type: 'string', default: '200' },
    tls: { type: 'boolean', default: false },
    'no-storm': { type: 'boolean', default: false },
    'no-reconnect': { type: 'boolean', default: false },
    'no-ceiling': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    timeout: { type: 'string', default: '120000' },
  },
});

const N = Number(flags.proxies);
const C = Number(flags.connections);
const M = Number(flags.separate);
const IDENTITIES = Number(flags.identities);
const TIMEOUT = Number(flags.timeout);
const HOURS = 3_600_000;
const LOAD = new URL('./lib/sds-load.ts', import.meta.url);

const children = new Children();

interface Phase {
  open: SdsOpenResult;
  rssPerProxy: number;
  rssBefore: number;
  rssAfter: number;
  connected: number;
}

/** Connects `proxies` streams over `connections` connections to a started server; measures RSS around it. */
async function connectFleet(server: Child, address: string, ca: string | undefined, proxies: number, connections: number, tokens: string[], nodePrefix: string): Promise<{ phase: Phase; load: Child }> {
  const load = children.start('sds-load', LOAD);
  await server.call('gc');
  await sleep(300);
  const rssBefore = rssBytes(server.pid);
  await load.call('connect', { address, ca, connections });
  const open = await load.call<SdsOpenResult>('open', { proxies, tokens, nodePrefix, timeoutMs: TIMEOUT });
  await sleep(1000); // the last ACKs land
  await server.call('gc');
  await sleep(300);
  const rssAfter = rssBytes(server.pid);
  const connected = await server.call<number>('connected');
  return { phase: { open, rssBefore, rssAfter, rssPerProxy: (rssAfter - rssBefore) / proxies, connected }, load };
}

function identities(n: number): Array<{ namespace: string; serviceAccount: string }> {
  return Array.from({ length: n }, (_, i) => ({ namespace: `ns-${i % 10}`, serviceAccount: `sa-${i}` }));
}

function describe(label: string, p: Phase): void {
  const lat = summarize(p.open.firstSecretMs);
  const fails = Object.entries(p.open.failures).map(([k, v]) => `${k} x${v}`).join(', ') || 'none';
  console.log(`  ${label}: ${p.open.held}/${p.open.proxies} hold default+ROOTCA after ${ms(p.open.allHeldMs)}; first secret p50 ${ms(lat.p50)} p99 ${ms(lat.p99)} max ${ms(lat.max)}; ` +
    `server RSS ${(p.rssBefore / 1048576).toFixed(0)} → ${(p.rssAfter / 1048576).toFixed(0)} MB (${kb(p.rssPerProxy)}/proxy), ${p.connected} streams open; failures: ${fails}`);
}

interface ScenarioResult {
  meshd: Phase;
  /** The same proxies reconnecting (new connections, same node ids): SVIDs come from the cache, no signing. */
  reconnect?: SdsOpenResult;
  ceiling?: Phase;
  /** New node ids on the warm server (B): fresh SVIDs without the cold-process cost. */
  fresh?: SdsOpenResult;
  /** The bare server's second fleet, once it is warm too. */
  warmCeiling?: SdsOpenResult;
  storm?: { rotated: number; withNewBytes: number; firstToLastMs: number; armToLastMs: number; loop: LoopDelay; failures: Record<string, number> };
}

async function scenario(label: string, proxies: number, connections: number, storm: boolean, warmFresh = false): Promise<ScenarioResult> {
  console.log(`\n[${label}] ${proxies} proxies over ${connections} HTTP/2 connection(s)${flags.tls ? ' (TLS)' : ' (plaintext port)'}`);
  const host = children.start('meshd', MESHD_HOST, serverArgs(flags['cpu-prof']));
  const started = await host.call<HostStarted>('start', {});
  const tokens = await host.call<string[]>('tokens', { identities: identities(IDENTITIES), ttlMs: 48 * HOURS });
  const address = `127.0.0.1:${flags.tls ? started.ports.secureGrpc : started.ports.grpc}`;
  const ca = flags.tls ? started.rootsPem : undefined;
  const { phase: meshd, load } = await connectFleet(host, address, ca, proxies, connections, tokens, `bench-${label}`);
  describe('meshd  ', meshd);

  let stormResult: ScenarioResult['storm'];
  if (storm && meshd.open.held === proxies) {
    // Every SVID (24h, rotated at 0.8 ± 0.02 of its life) is due once the clock passes 20h.
    await host.call('loopDelayReset');
    await load.call('armRotation');
    await host.call('advanceClock', { ms: 20 * HOURS });
    const rot = await load.call<{ rotated: number; withNewBytes: number; firstToLastMs: number; armToLastMs: number; failures: Record<string, number> }>('awaitRotation', { timeoutMs: TIMEOUT });
    const loop = await host.call<LoopDelay>('loopDelay');
    stormResult = { ...rot, loop };
    console.log(`  storm  : ${rot.rotated}/${proxies} got a rotated SVID (${rot.withNewBytes} with new bytes); first→last ${ms(rot.firstToLastMs)} (clock jump→last ${ms(rot.armToLastMs)}); ` +
      `server event-loop delay max ${ms(loop.maxMs)} p99 ${ms(loop.p99Ms)} mean ${ms(loop.meanMs)}; longest GC pause ${ms(loop.gcMaxMs)} (${loop.gcMaxKind || 'none'}), GC total ${ms(loop.gcTotalMs)}; longest synchronous core.push() ${ms(loop.pushSyncMaxMs)}`);
  }
  let reconnect: SdsOpenResult | undefined;
  if (!flags['no-reconnect'] && meshd.open.held === proxies) {
    // Every proxy drops and reconnects (a network blip, a load-balancer failover): same node ids,
    // so each gets its current SVID back from the cache; what remains is meshd's per-stream cost.
    await load.call('close');
    while ((await host.call<number>('connected')) > 0) await sleep(100);
    await load.call('connect', { address, ca, connections });
    reconnect = await load.call<SdsOpenResult>('open', { proxies, tokens, nodePrefix: `bench-${label}`, timeoutMs: TIMEOUT });
    const lat = summarize(reconnect.firstSecretMs);
    console.log(`  reconn.: ${reconnect.held}/${proxies} hold default+ROOTCA again after ${ms(reconnect.allHeldMs)} (SVIDs cached); first secret p50 ${ms(lat.p50)} p99 ${ms(lat.p99)}`);
  }
  let fresh: SdsOpenResult | undefined;
  if (warmFresh && meshd.open.held === proxies) {
    // The same number of proxies, new node ids, on the now-warm server: each needs a new key and
    // SVID again. The first connect above ran on a process seconds old (code not yet optimised
    // by V8); a long-running meshd meets new proxies like this.
    await load.call('close');
    while ((await host.call<number>('connected')) > 0) await sleep(100);
    await load.call('connect', { address, ca, connections });
    fresh = await load.call<SdsOpenResult>('open', { proxies, tokens, nodePrefix: `bench-${label}-new`, timeoutMs: TIMEOUT });
    const lat = summarize(fresh.firstSecretMs);
    console.log(`  warm   : ${fresh.held}/${proxies} new proxies hold default+ROOTCA after ${ms(fresh.allHeldMs)} (new SVIDs, warm server); first secret p50 ${ms(lat.p50)} p99 ${ms(lat.p99)}`);
  }
  const tls = flags.tls ? await host.call<{ keyPem: string; chainPem: string }>('servingCert') : undefined;
  await load.call('close');
  await load.stop();
  await host.call('stop').catch(() => undefined);
  await host.stop();

  let ceiling: Phase | undefined;
  let warmCeiling: SdsOpenResult | undefined;
  if (!flags['no-ceiling'] && meshd.open.sampleResponse) {
    const bare = children.start('bare-server', BARE_SERVER, serverArgs(flags['cpu-prof']));
    const { port } = await bare.call<{ port: number }>('start', { mode: 'sds', response: meshd.open.sampleResponse, tls });
    const run = await connectFleet(bare, `127.0.0.1:${port}`, ca, proxies, connections, tokens, `bench-${label}`);
    ceiling = run.phase;
    describe('ceiling', ceiling);
    await run.load.call('close');
    if (fresh) {
      // The warm ceiling: the bare server, now warm too, feeding a second fleet.
      while ((await bare.call<number>('connected')) > 0) await sleep(100);
      await run.load.call('connect', { address: `127.0.0.1:${port}`, ca, connections });
      warmCeiling = await run.load.call<SdsOpenResult>('open', { proxies, tokens, nodePrefix: `bench-${label}-new`, timeoutMs: TIMEOUT });
      console.log(`  ceiling: ${warmCeiling.held}/${proxies} new proxies after ${ms(warmCeiling.allHeldMs)} (warm bare server)`);
      await run.load.call('close');
    }
    await run.load.stop();
    await bare.call('stop').catch(() => undefined);
    await bare.stop();
  }
  return { meshd, ceiling, storm: stormResult, reconnect, fresh, warmCeiling };
}

async function main(): Promise<void> {
  console.log(`bench:sds — ${process.argv.slice(2).join(' ') || '(defaults)'}; ${machineNote()}`);
  console.log('The machine is shared with other work: figures are noisy, compare meshd with the ceiling of the same run.');
  const a = await scenario('A', N, C, !flags['no-storm']);
  const b = M > 0 ? await scenario('B', M, M, false, true) : undefined;

  const rows: Row[] = [];
  const ratio = (m: number, c: number | undefined): number | undefined => (c !== undefined && c > 0 && Number.isFinite(m) ? m / c : undefined);
  const pushTime = (label: string, r: ScenarioResult, n: number, target?: number): void => {
    const c = r.ceiling?.open.allHeldMs;
    const rt = ratio(r.meshd.open.allHeldMs, c);
    rows.push({ metric: `${label}: ${n} proxies hold default+ROOTCA`, measured: ms(r.meshd.open.allHeldMs), ceiling: c === undefined ? undefined : ms(c), ratio: rt, target: target ? `≤ ${ms(target)}, ≤ 2x` : '≤ 2x', pass: r.meshd.open.held === n && (target === undefined || r.meshd.open.allHeldMs <= target) && (rt === undefined || rt <= 2) });
    const lat = summarize(r.meshd.open.firstSecretMs);
    const cl = r.ceiling ? summarize(r.ceiling.open.firstSecretMs) : undefined;
    rows.push({ metric: `${label}: first-secret latency p50`, measured: ms(lat.p50), ceiling: cl && ms(cl.p50), ratio: ratio(lat.p50, cl?.p50), target: '', pass: undefined });
    rows.push({ metric: `${label}: first-secret latency p99`, measured: ms(lat.p99), ceiling: cl && ms(cl.p99), ratio: ratio(lat.p99, cl?.p99), target: '', pass: undefined });
    if (r.reconnect) {
      const rr = ratio(r.reconnect.allHeldMs, c);
      rows.push({ metric: `${label}: reconnect, SVIDs cached (no signing)`, measured: ms(r.reconnect.allHeldMs), ceiling: c === undefined ? undefined : ms(c), ratio: rr, target: '', pass: undefined });
    }
    if (r.fresh) {
      const wc = r.warmCeiling?.allHeldMs;
      rows.push({ metric: `${label}: new proxies, both servers warm (new SVIDs)`, measured: ms(r.fresh.allHeldMs), ceiling: wc === undefined ? undefined : ms(wc), ratio: ratio(r.fresh.allHeldMs, wc), target: '', pass: undefined });
    }
    rows.push({ metric: `${label}: server RSS per proxy`, measured: kb(r.meshd.rssPerProxy), ceiling: r.ceiling && kb(r.ceiling.rssPerProxy), ratio: ratio(r.meshd.rssPerProxy, r.ceiling?.rssPerProxy), target: '≤ 100 KB', pass: r.meshd.rssPerProxy <= 100 * 1024 });
  };
  pushTime(`A (${C} conns)`, a, N, 10_000);
  if (a.storm) {
    rows.push({ metric: `A: rotation storm, first→last of ${a.storm.rotated} pushes`, measured: ms(a.storm.firstToLastMs), target: `all ${N} rotated`, pass: a.storm.rotated === N && a.storm.withNewBytes === N });
    rows.push({ metric: 'A: server event-loop delay during storm (max)', measured: ms(a.storm.loop.maxMs), target: '< 100 ms', pass: a.storm.loop.maxMs < 100 });
  }
  if (b) pushTime(`B (${M} conns)`, b, M);
  printTable(`bench:sds summary (${flags.tls ? 'TLS' : 'plaintext'} gRPC; ceiling = bare grpc-js server, same bytes, same streams)`, rows);
}

runBench(main, flags['cpu-prof']);
