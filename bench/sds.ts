/**
 * npm run bench:sds [-- --proxies 10000 --connections 100 --separate 1000 --identities 200 --trials 3 --tls --no-storm --no-reconnect --no-ceiling --cpu-prof --heap-snapshot FILE
 *                      --agents 10000 --ceiling-mints 2000 --scenarios A,B,C]
 *
 * meshd's SDS under a fleet. The server runs in its own process
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
 *  C. A rotation storm of agents (`meshd agent`, which renews over Istio's CSR API, not SDS):
 *     K agents (default 10,000) each hold a client SVID of one of `identities` service
 *     accounts and a fresh key with its CSR; at once, each opens its own TLS connection to
 *     meshd's gRPC port presenting its SVID (no token) and calls CreateCertificate. Prints
 *     renewals/s against the CA's own minting ceiling measured in the same meshd process right
 *     after (CertificateAuthority.signCsr on the same CSRs, all at once, no gRPC, TLS or
 *     authentication), the renewal latencies, and the worst event-loop delay inside meshd
 *     during the storm (perf_hooks.monitorEventLoopDelay; target < 100 ms). 100 agents renew
 *     first, unmeasured: a storm meets a meshd that has run for hours, not one just started.
 *
 * Ceiling, in the same run, for A and B: a bare grpc-js server (bench/lib/bare-server.ts,
 * same server options, no auth, no core) writing the very response bytes meshd sent to the
 * same streams from the same load process. A runs `--trials` meshd/ceiling pairs on fresh
 * processes (storm and reconnect in the first) and reports the pair with the median ratio.
 */
import { parseArgs } from 'node:util';
import type { Child } from './lib/ipc.js';
import { BARE_SERVER, Children, MESHD_HOST, runBench, serverArgs, sleep } from './lib/orchestrator.js';
import { cpuSeconds, machineNote, rssBytes } from './lib/proc-stats.js';
import { kb, ms, printTable, summarize, type Row } from './lib/stats.js';
import type { HostStarted, LoopDelay } from './lib/meshd-host.js';
import type { SdsOpenResult } from './lib/sds-load.js';
import type { AgentSvid, CsrStormResult } from './lib/csr-load.js';

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
    /** Where to write the server's V8 heap snapshot once A's first fleet holds its secrets. */
    'heap-snapshot': { type: 'string' },
    trials: { type: 'string', default: '3' },
    timeout: { type: 'string', default: '120000' },
    agents: { type: 'string', default: '10000' },
    'ceiling-mints': { type: 'string', default: '2000' },
    scenarios: { type: 'string', default: 'A,B,C' },
  },
});

const N = Number(flags.proxies);
const C = Number(flags.connections);
const M = Number(flags.separate);
const IDENTITIES = Number(flags.identities);
const TRIALS = Math.max(1, Number(flags.trials));
const TIMEOUT = Number(flags.timeout);
const HOURS = 3_600_000;
const LOAD = new URL('./lib/sds-load.ts', import.meta.url);
const CSR_LOAD = new URL('./lib/csr-load.ts', import.meta.url);
const AGENTS = Number(flags.agents);
const CEILING_MINTS = Number(flags['ceiling-mints']);
const WARMUP = 100;
const SCENARIOS = new Set(flags.scenarios.split(',').map((x) => x.trim().toUpperCase()));

const children = new Children();

interface Phase {
  open: SdsOpenResult;
  rssPerProxy: number;
  rssBefore: number;
  rssAfter: number;
  connected: number;
  /** Server CPU (user + system, all threads) from the first stream opened to the last secret held. */
  cpuSeconds: number;
  /** The load process's CPU over the same span: both share the machine's two cores. */
  loadCpuSeconds: number;
}

/** Connects `proxies` streams over `connections` connections to a started server; measures RSS around it. */
async function connectFleet(server: Child, address: string, ca: string | undefined, proxies: number, connections: number, tokens: string[], nodePrefix: string): Promise<{ phase: Phase; load: Child }> {
  const load = children.start('sds-load', LOAD);
  await server.call('gc');
  await sleep(300);
  const rssBefore = rssBytes(server.pid);
  await load.call('connect', { address, ca, connections });
  const cpuBefore = [cpuSeconds(server.pid), cpuSeconds(load.pid)];
  const open = await load.call<SdsOpenResult>('open', { proxies, tokens, nodePrefix, timeoutMs: TIMEOUT });
  const cpu = cpuSeconds(server.pid) - cpuBefore[0]!;
  const loadCpu = cpuSeconds(load.pid) - cpuBefore[1]!;
  await sleep(1000); // the last ACKs land
  await server.call('gc');
  await sleep(300);
  const rssAfter = rssBytes(server.pid);
  const connected = await server.call<number>('connected');
  return { phase: { open, rssBefore, rssAfter, rssPerProxy: (rssAfter - rssBefore) / proxies, connected, cpuSeconds: cpu, loadCpuSeconds: loadCpu }, load };
}

function identities(n: number): Array<{ namespace: string; serviceAccount: string }> {
  return Array.from({ length: n }, (_, i) => ({ namespace: `ns-${i % 10}`, serviceAccount: `sa-${i}` }));
}

function describe(label: string, p: Phase): void {
  const lat = summarize(p.open.firstSecretMs);
  const fails = Object.entries(p.open.failures).map(([k, v]) => `${k} x${v}`).join(', ') || 'none';
  console.log(`  ${label}: ${p.open.held}/${p.open.proxies} hold default+ROOTCA after ${ms(p.open.allHeldMs)}; first secret p50 ${ms(lat.p50)} p99 ${ms(lat.p99)} max ${ms(lat.max)}; ` +
    `server CPU ${p.cpuSeconds.toFixed(2)} s (${((p.cpuSeconds * 1e6) / p.open.proxies).toFixed(0)} µs/proxy), load process ${p.loadCpuSeconds.toFixed(2)} s; ` +
    `server RSS ${(p.rssBefore / 1048576).toFixed(0)} → ${(p.rssAfter / 1048576).toFixed(0)} MB (${kb(p.rssPerProxy)}/proxy), ${p.connected} streams open; failures: ${fails}`);
}

interface Storm { rotated: number; withNewBytes: number; firstToLastMs: number; armToLastMs: number; loop: LoopDelay; failures: Record<string, number> }

interface ScenarioResult {
  /** Every trial, in order: meshd's fleet and the ceiling's, measured one after the other. */
  trials: Array<{ meshd: Phase; ceiling?: Phase }>;
  /** The trial whose meshd/ceiling ratio is the median: it stands for the scenario. */
  meshd: Phase;
  ceiling?: Phase;
  /** The same proxies reconnecting (new connections, same node ids): SVIDs come from the cache, no signing. */
  reconnect?: SdsOpenResult;
  /** New node ids on the warm server (B): fresh SVIDs without the cold-process cost. */
  fresh?: SdsOpenResult;
  /** The bare server's second fleet, once it is warm too. */
  warmCeiling?: SdsOpenResult;
  storm?: Storm;
}

interface ScenarioOptions {
  storm: boolean;
  /** B: after the first fleet, new node ids on the warm server, and the same on the warm ceiling. */
  warmFresh: boolean;
  /** meshd/ceiling pairs; the storm, reconnect and warm rows run in the first only. */
  trials: number;
}

interface MeshdTrial {
  meshd: Phase;
  storm?: Storm;
  reconnect?: SdsOpenResult;
  fresh?: SdsOpenResult;
  /** What the ceiling reuses: meshd's tokens, roots and serving certificate (--tls). */
  tokens: string[];
  ca?: string;
  tls?: { keyPem: string; chainPem: string };
}

/** A fresh meshd process and a fleet of new proxies (so every one needs a key and an SVID); with `extras`, the rows after it. */
async function meshdTrial(proxies: number, connections: number, nodePrefix: string, extras: Omit<ScenarioOptions, 'trials'> | undefined): Promise<MeshdTrial> {
  const host = children.start('meshd', MESHD_HOST, serverArgs(flags['cpu-prof']));
  const started = await host.call<HostStarted>('start', {});
  const tokens = await host.call<string[]>('tokens', { identities: identities(IDENTITIES), ttlMs: 48 * HOURS });
  const address = `127.0.0.1:${flags.tls ? started.ports.secureGrpc : started.ports.grpc}`;
  const ca = flags.tls ? started.rootsPem : undefined;
  const { phase: meshd, load } = await connectFleet(host, address, ca, proxies, connections, tokens, nodePrefix);
  describe('meshd  ', meshd);
  if (extras && flags['heap-snapshot']) console.log(`  heap snapshot: ${await host.call<string>('heapSnapshot', { path: flags['heap-snapshot'] })}`);
  const trial: MeshdTrial = { meshd, tokens, ca };
  const allHeld = meshd.open.held === proxies;

  if (extras?.storm && allHeld) {
    // Every SVID (24h, rotated at 0.8 ± 0.02 of its life) is due once the clock passes 20h.
    await host.call('loopDelayReset');
    await load.call('armRotation');
    await host.call('advanceClock', { ms: 20 * HOURS });
    const rot = await load.call<Omit<Storm, 'loop'>>('awaitRotation', { timeoutMs: TIMEOUT });
    const loop = await host.call<LoopDelay>('loopDelay');
    trial.storm = { ...rot, loop };
    console.log(`  storm  : ${rot.rotated}/${proxies} got a rotated SVID (${rot.withNewBytes} with new bytes); first→last ${ms(rot.firstToLastMs)} (clock jump→last ${ms(rot.armToLastMs)}); ` +
      `server event-loop delay max ${ms(loop.maxMs)} p99 ${ms(loop.p99Ms)} mean ${ms(loop.meanMs)}; longest GC pause ${ms(loop.gcMaxMs)} (${loop.gcMaxKind || 'none'}), GC total ${ms(loop.gcTotalMs)}; longest synchronous core.push() ${ms(loop.pushSyncMaxMs)}`);
  }
  /** Every proxy drops; `prefix` connects again (same node ids: SVIDs cached; new ones: new SVIDs). */
  const again = async (prefix: string): Promise<SdsOpenResult> => {
    await load.call('close');
    while ((await host.call<number>('connected')) > 0) await sleep(100);
    await load.call('connect', { address, ca, connections });
    return load.call<SdsOpenResult>('open', { proxies, tokens, nodePrefix: prefix, timeoutMs: TIMEOUT });
  };
  if (extras && !flags['no-reconnect'] && allHeld) {
    // A network blip or a load-balancer failover: each proxy gets its current SVID back from
    // the cache, so what remains is meshd's per-stream cost without signing.
    const r = await again(nodePrefix);
    trial.reconnect = r;
    const lat = summarize(r.firstSecretMs);
    console.log(`  reconn.: ${r.held}/${proxies} hold default+ROOTCA again after ${ms(r.allHeldMs)} (SVIDs cached); first secret p50 ${ms(lat.p50)} p99 ${ms(lat.p99)}`);
  }
  if (extras?.warmFresh && allHeld) {
    // New node ids on the now-warm server: each needs a new key and SVID again. The first
    // fleet met a process seconds old (code not yet optimised by V8); a long-running meshd
    // meets new proxies like this.
    const f = await again(`${nodePrefix}-new`);
    trial.fresh = f;
    const lat = summarize(f.firstSecretMs);
    console.log(`  warm   : ${f.held}/${proxies} new proxies hold default+ROOTCA after ${ms(f.allHeldMs)} (new SVIDs, warm server); first secret p50 ${ms(lat.p50)} p99 ${ms(lat.p99)}`);
  }
  if (flags.tls) trial.tls = await host.call<{ keyPem: string; chainPem: string }>('servingCert');
  await load.call('close');
  await load.stop();
  await host.call('stop').catch(() => undefined);
  await host.stop();
  return trial;
}

/** The bare grpc-js server fed meshd's own response bytes, to the same fleet; optionally a second fleet once it is warm. */
async function ceilingTrial(proxies: number, connections: number, nodePrefix: string, m: MeshdTrial, warm: boolean): Promise<{ ceiling: Phase; warmCeiling?: SdsOpenResult }> {
  const bare = children.start('bare-server', BARE_SERVER, serverArgs(flags['cpu-prof']));
  const { port } = await bare.call<{ port: number }>('start', { mode: 'sds', response: m.meshd.open.sampleResponse, tls: m.tls });
  const address = `127.0.0.1:${port}`;
  const run = await connectFleet(bare, address, m.ca, proxies, connections, m.tokens, nodePrefix);
  describe('ceiling', run.phase);
  await run.load.call('close');
  let warmCeiling: SdsOpenResult | undefined;
  if (warm) {
    while ((await bare.call<number>('connected')) > 0) await sleep(100);
    await run.load.call('connect', { address, ca: m.ca, connections });
    warmCeiling = await run.load.call<SdsOpenResult>('open', { proxies, tokens: m.tokens, nodePrefix: `${nodePrefix}-new`, timeoutMs: TIMEOUT });
    console.log(`  ceiling: ${warmCeiling.held}/${proxies} new proxies after ${ms(warmCeiling.allHeldMs)} (warm bare server)`);
    await run.load.call('close');
  }
  await run.load.stop();
  await bare.call('stop').catch(() => undefined);
  await bare.stop();
  return { ceiling: run.phase, warmCeiling };
}

/**
 * Trials in pairs, meshd then the ceiling, each on fresh processes: this VM's speed drifts
 * by tens of percent within a minute (the ceiling alone has ranged 1.8-3.8 s), so each ratio
 * compares two fleets measured back to back, and the trial with the median ratio is reported.
 */
async function scenario(label: string, proxies: number, connections: number, opts: ScenarioOptions): Promise<ScenarioResult> {
  console.log(`\n[${label}] ${proxies} proxies over ${connections} HTTP/2 connection(s)${flags.tls ? ' (TLS)' : ' (plaintext port)'}, ${opts.trials} trial(s)`);
  const result: Partial<ScenarioResult> & { trials: ScenarioResult['trials'] } = { trials: [] };
  for (let i = 1; i <= opts.trials; i++) {
    if (opts.trials > 1) console.log(` trial ${i}`);
    const nodePrefix = `bench-${label}-${i}`;
    const m = await meshdTrial(proxies, connections, nodePrefix, i === 1 ? opts : undefined);
    if (i === 1) Object.assign(result, { storm: m.storm, reconnect: m.reconnect, fresh: m.fresh });
    let ceiling: Phase | undefined;
    if (!flags['no-ceiling'] && m.meshd.open.sampleResponse) {
      const c = await ceilingTrial(proxies, connections, nodePrefix, m, i === 1 && opts.warmFresh && m.fresh !== undefined);
      ceiling = c.ceiling;
      if (i === 1) result.warmCeiling = c.warmCeiling;
    }
    result.trials.push({ meshd: m.meshd, ceiling });
  }
  const key = (t: ScenarioResult['trials'][number]): number => (t.ceiling ? t.meshd.open.allHeldMs / t.ceiling.open.allHeldMs : t.meshd.open.allHeldMs);
  const sorted = [...result.trials].sort((a, b) => key(a) - key(b));
  const median = sorted[(sorted.length - 1) >> 1]!;
  if (opts.trials > 1) console.log(`  ratios by trial: ${result.trials.map((t) => (t.ceiling ? `${key(t).toFixed(2)}x` : 'n/a')).join(', ')}; the median trial stands for ${label}`);
  return { ...result, meshd: median.meshd, ceiling: median.ceiling };
}

interface AgentStorm {
  storm: CsrStormResult;
  /** Mints/s of signCsr alone, on the same process right after the storm. */
  ceiling: { minted: number; elapsedMs: number };
  loop: LoopDelay;
  cpuSeconds: number;
}

/** C: every agent renews with its SVID over the CSR API at once; then the CA's own ceiling. */
async function agentScenario(): Promise<AgentStorm> {
  console.log(`\n[C] ${AGENTS} agents renew at once over the CSR API, each on its own TLS connection presenting its SVID (${IDENTITIES} identities)`);
  const host = children.start('meshd', MESHD_HOST, serverArgs(flags['cpu-prof']));
  const started = await host.call<HostStarted>('start', {});
  const svids = await host.call<AgentSvid[]>('agentSvids', { identities: identities(IDENTITIES) });
  const load = children.start('csr-load', CSR_LOAD);
  await load.call('prepare', { agents: AGENTS + WARMUP, svids });
  const address = `127.0.0.1:${started.ports.secureGrpc}`;
  // A rotation storm meets a meshd that has been running for hours: a first round of renewals
  // takes the cost of code compiled and modules loaded on first use out of the measurement.
  const warm = await load.call<CsrStormResult>('storm', { address, ca: started.rootsPem, timeoutMs: TIMEOUT, first: AGENTS, count: WARMUP });
  console.log(`  warm-up: ${warm.renewed}/${warm.agents} renewed in ${ms(warm.elapsedMs)}`);
  await host.call('gc');
  await sleep(300);
  await host.call('loopDelayReset');
  const cpuBefore = cpuSeconds(host.pid);
  const storm = await load.call<CsrStormResult>('storm', { address, ca: started.rootsPem, timeoutMs: TIMEOUT, first: 0, count: AGENTS });
  const cpu = cpuSeconds(host.pid) - cpuBefore;
  const loop = await host.call<LoopDelay>('loopDelay');
  const lat = summarize(storm.latenciesMs);
  const fails = Object.entries(storm.failures).map(([k, v]) => `${k} x${v}`).join(', ') || 'none';
  // (failed attempts, each retried after a backoff as the agent does)
  console.log(`  storm  : ${storm.renewed}/${storm.agents} renewed in ${ms(storm.elapsedMs)} (${rate(storm.renewed, storm.elapsedMs)}/s); latency p50 ${ms(lat.p50)} p99 ${ms(lat.p99)} max ${ms(lat.max)}; ` +
    `server CPU ${cpu.toFixed(2)} s; event-loop delay max ${ms(loop.maxMs)} p99 ${ms(loop.p99Ms)} mean ${ms(loop.meanMs)}; longest GC pause ${ms(loop.gcMaxMs)} (${loop.gcMaxKind || 'none'}); failed attempts (retried): ${fails}`);
  const csrs = await load.call<Array<{ spiffeId: string; csrPem: string }>>('csrs', { count: Math.min(CEILING_MINTS, AGENTS) });
  const ceiling = await host.call<{ minted: number; elapsedMs: number }>('mintCeiling', { csrs });
  console.log(`  ceiling: signCsr alone minted ${ceiling.minted} in ${ms(ceiling.elapsedMs)} (${rate(ceiling.minted, ceiling.elapsedMs)}/s)`);
  await load.stop();
  await host.call('stop').catch(() => undefined);
  await host.stop();
  return { storm, ceiling, loop, cpuSeconds: cpu };
}

const perSecond = (n: number, elapsedMs: number): number => (elapsedMs > 0 ? (n * 1000) / elapsedMs : NaN);
const rate = (n: number, elapsedMs: number): string => { const r = perSecond(n, elapsedMs); return r.toFixed(r < 10 ? 1 : 0); };

async function main(): Promise<void> {
  console.log(`bench:sds — ${process.argv.slice(2).join(' ') || '(defaults)'}; ${machineNote()}`);
  console.log('The machine is shared with other work: figures are noisy, compare meshd with the ceiling of the same run.');
  const a = SCENARIOS.has('A') ? await scenario('A', N, C, { storm: !flags['no-storm'], warmFresh: false, trials: TRIALS }) : undefined;
  const b = SCENARIOS.has('B') && M > 0 ? await scenario('B', M, M, { storm: false, warmFresh: true, trials: 1 }) : undefined;
  const c = SCENARIOS.has('C') && AGENTS > 0 ? await agentScenario() : undefined;

  const rows: Row[] = [];
  const ratio = (m: number, c: number | undefined): number | undefined => (c !== undefined && c > 0 && Number.isFinite(m) ? m / c : undefined);
  const pushTime = (label: string, r: ScenarioResult, n: number, target?: number): void => {
    const c = r.ceiling?.open.allHeldMs;
    const rt = ratio(r.meshd.open.allHeldMs, c);
    const trials = r.trials.length > 1 ? ` (median of ${r.trials.length} trials)` : '';
    rows.push({ metric: `${label}: ${n} proxies hold default+ROOTCA${trials}`, measured: ms(r.meshd.open.allHeldMs), ceiling: c === undefined ? undefined : ms(c), ratio: rt, target: target ? `≤ ${ms(target)}, ≤ 2x` : '≤ 2x', pass: r.meshd.open.held === n && (target === undefined || r.meshd.open.allHeldMs <= target) && (rt === undefined || rt <= 2) });
    const lat = summarize(r.meshd.open.firstSecretMs);
    const cl = r.ceiling ? summarize(r.ceiling.open.firstSecretMs) : undefined;
    rows.push({ metric: `${label}: first-secret latency p50`, measured: ms(lat.p50), ceiling: cl && ms(cl.p50), ratio: ratio(lat.p50, cl?.p50), target: '', pass: undefined });
    rows.push({ metric: `${label}: first-secret latency p99`, measured: ms(lat.p99), ceiling: cl && ms(cl.p99), ratio: ratio(lat.p99, cl?.p99), target: '', pass: undefined });
    if (r.reconnect) {
      // Against the ceiling of the same trial (the first).
      const c1 = r.trials[0]?.ceiling?.open.allHeldMs;
      rows.push({ metric: `${label}: reconnect, SVIDs cached (no signing)`, measured: ms(r.reconnect.allHeldMs), ceiling: c1 === undefined ? undefined : ms(c1), ratio: ratio(r.reconnect.allHeldMs, c1), target: '', pass: undefined });
    }
    if (r.fresh) {
      const wc = r.warmCeiling?.allHeldMs;
      rows.push({ metric: `${label}: new proxies, both servers warm (new SVIDs)`, measured: ms(r.fresh.allHeldMs), ceiling: wc === undefined ? undefined : ms(wc), ratio: ratio(r.fresh.allHeldMs, wc), target: '', pass: undefined });
    }
    const us = (p: Phase): number => (p.cpuSeconds * 1e6) / n;
    rows.push({ metric: `${label}: server CPU per proxy (all threads)`, measured: `${us(r.meshd).toFixed(0)} µs`, ceiling: r.ceiling && `${us(r.ceiling).toFixed(0)} µs`, ratio: r.ceiling && ratio(us(r.meshd), us(r.ceiling)), target: '', pass: undefined });
    rows.push({ metric: `${label}: server RSS per proxy`, measured: kb(r.meshd.rssPerProxy), ceiling: r.ceiling && kb(r.ceiling.rssPerProxy), ratio: ratio(r.meshd.rssPerProxy, r.ceiling?.rssPerProxy), target: '≤ 100 KB', pass: r.meshd.rssPerProxy <= 100 * 1024 });
  };
  if (a) pushTime(`A (${C} conns)`, a, N, 10_000);
  if (a?.storm) {
    rows.push({ metric: `A: rotation storm, first→last of ${a.storm.rotated} pushes`, measured: ms(a.storm.firstToLastMs), target: `all ${N} rotated`, pass: a.storm.rotated === N && a.storm.withNewBytes === N });
    rows.push({ metric: 'A: server event-loop delay during storm (max)', measured: ms(a.storm.loop.maxMs), target: '< 100 ms', pass: a.storm.loop.maxMs < 100 });
  }
  if (b) pushTime(`B (${M} conns)`, b, M);
  if (c) {
    const renewals = perSecond(c.storm.renewed, c.storm.elapsedMs);
    const mints = perSecond(c.ceiling.minted, c.ceiling.elapsedMs);
    rows.push({ metric: `C: ${AGENTS} agents renew with their SVIDs over the CSR API (renewals/s)`, measured: `${rate(c.storm.renewed, c.storm.elapsedMs)}/s`, ceiling: `${rate(c.ceiling.minted, c.ceiling.elapsedMs)}/s`, ratio: renewals / mints, target: `all ${AGENTS} renewed`, pass: c.storm.renewed === AGENTS });
    const lat = summarize(c.storm.latenciesMs);
    rows.push({ metric: 'C: renewal latency p50 / p99', measured: `${ms(lat.p50)} / ${ms(lat.p99)}`, target: '', pass: undefined });
    rows.push({ metric: 'C: server CPU per renewal (all threads)', measured: `${((c.cpuSeconds * 1e6) / Math.max(1, c.storm.renewed)).toFixed(0)} µs`, target: '', pass: undefined });
    rows.push({ metric: 'C: server event-loop delay during the storm (max)', measured: ms(c.loop.maxMs), target: '< 100 ms', pass: c.loop.maxMs < 100 });
  }
  printTable(`bench:sds summary (A, B: ${flags.tls ? 'TLS' : 'plaintext'} gRPC, ceiling = bare grpc-js server, same bytes, same streams; C: TLS with client SVIDs, ceiling = the CA's signCsr alone, ratio = renewals/s ÷ mints/s)`, rows);
}

runBench(main, flags['cpu-prof']);
