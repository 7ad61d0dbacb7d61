/**
 * npm run bench:xds [-- --namespaces 10 --services 10 --workloads 10 --replicas 10 --connections 100 --tls --no-sds --cpu-prof --authz-policies]
 *
 * --authz-policies gives every workload its own AuthorizationPolicy (3 rules: principals,
 * namespaces, methods, notPaths; ipBlocks and ports; a header condition), so each sidecar's
 * inbound listeners carry RBAC filters; run with and without it to compare.
 *
 * meshd's xDS under a fleet: a mesh of 1,000 WorkloadEntries (10
 * namespaces x 10 ServiceEntries x 10 workloads, loopback VIPs, a namespace-wide
 * PeerAuthentication per namespace in its own file) and 10,000 Envoy-like ADS clients in a
 * separate process (bench/lib/ads-load.ts), 10 per workload, each with its workload's
 * service-account token: CDS and LDS wildcard, EDS and RDS names from what they receive, the
 * `default`/`ROOTCA` secrets their TLS contexts name, every response ACKed. They connect in
 * waves of --batch (default 1,000: the next wave when the previous one is synced); --batch 0
 * connects all at once.
 *
 * Then one namespace's PeerAuthentication file is rewritten PERMISSIVE → STRICT (and back, and
 * again: --changes trials, default 3; the trial with the median p99 is reported). Printed: the
 * time from the file write until each proxy of that namespace has received and ACKed its new
 * listeners (p50, p99, max), which other proxies were pushed, the server's CPU seconds
 * (/proc/<pid>/stat) and RSS (/proc/<pid>/status).
 *
 * Ceiling, same run: a bare grpc-js server (bench/lib/bare-server.ts) holding the same
 * number of streams from the same load process, replaying the listener responses captured
 * from meshd in this run (per workload, before and after the change) and triggered the same
 * way (the same file write, fs.watch and the same 100 ms debounce meshd's config watcher uses).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BARE_SERVER, Children, MESHD_HOST, runBench, serverArgs, sleep } from './lib/orchestrator.js';
import { cpuSeconds, machineNote, rssBytes } from './lib/proc-stats.js';
import { mb, ms, printTable, summarize, type Row } from './lib/stats.js';
import { namespaceName, peerAuthenticationYaml, writeBenchMesh } from './lib/mesh-config.js';
import type { HostStarted, LoopDelay } from './lib/meshd-host.js';
import type { AdsOpenResult } from './lib/ads-load.js';

const { values: flags } = parseArgs({
  options: {
    namespaces: { type: 'string', default: '10' },
    services: { type: 'string', default: '10' },
    workloads: { type: 'string', default: '10' },
    replicas: { type: 'string', default: '10' },
    proxies: { type: 'string' },
    connections: { type: 'string', default: '100' },
    batch: { type: 'string', default: '1000' },
    tls: { type: 'boolean', default: false },
    'no-sds': { type: 'boolean', default: false },
    'no-ceiling': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    'heap-snapshot': { type: 'string' },
    timeout: { type: 'string', default: '180000' },
    changes: { type: 'string', default: '3' },
    'authz-policies': { type: 'boolean', default: false },
  },
});

const shape = {
  namespaces: Number(flags.namespaces), servicesPerNamespace: Number(flags.services), workloadsPerService: Number(flags.workloads),
  authorizationPolicies: flags['authz-policies'],
};
const WORKLOADS = shape.namespaces * shape.servicesPerNamespace * shape.workloadsPerService;
// --proxies N is a shorthand for N / workloads replicas per workload.
const REPLICAS = flags.proxies ? Math.max(1, Math.round(Number(flags.proxies) / WORKLOADS)) : Number(flags.replicas);
const N = WORKLOADS * REPLICAS;
const C = Math.min(Number(flags.connections), N);
const TIMEOUT = Number(flags.timeout);
const CHANGED = namespaceName(0);
const CHANGES = Math.max(1, Number(flags.changes));
const LOAD = new URL('./lib/ads-load.ts', import.meta.url);

const children = new Children();
const loadArgs = ['--max-old-space-size=4096'];

interface Convergence {
  expected: number;
  converged: number;
  convergeMs: number[];
  receiveMs: number[];
  unexpectedLds: number;
  proxiesPushed: number;
  pushesByType: Record<string, number>;
  firstMs: number;
  failures: Record<string, number>;
}

interface Trial {
  mode: string;
  conv: Convergence;
  cpu: number;
  loop: LoopDelay;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

function medianTrial(trials: readonly Convergence[]): Convergence {
  const byP99 = [...trials].sort((a, b) => summarize(a.convergeMs).p99 - summarize(b.convergeMs).p99);
  return byP99[Math.floor((byP99.length - 1) / 2)]!;
}

function describeConvergence(label: string, c: Convergence): void {
  const s = summarize(c.convergeMs);
  const pushes = Object.entries(c.pushesByType).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const fails = Object.entries(c.failures).map(([k, v]) => `${k} x${v}`).join(', ') || 'none';
  console.log(`  ${label}: ${c.converged}/${c.expected} proxies of ${CHANGED} ACKed new listeners; from the file write: first ${ms(c.firstMs)}, ` +
    `p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)}; ${c.proxiesPushed} proxies got any push (${pushes}); ` +
    `new listeners outside ${CHANGED}: ${c.unexpectedLds}; stream failures: ${fails}`);
}

async function main(): Promise<void> {
  console.log(`bench:xds — ${process.argv.slice(2).join(' ') || '(defaults)'}; ${machineNote()}`);
  console.log('The machine is shared with other work: figures are noisy, compare meshd with the ceiling of the same run.');
  const dir = await mkdtemp(join(tmpdir(), 'meshd-bench-xds-'));
  try {
    const mesh = await writeBenchMesh(join(dir, 'config'), shape);
    const policyFile = mesh.policyFile(CHANGED);
    console.log(`\nmesh: ${WORKLOADS} WorkloadEntries in ${shape.namespaces} namespaces, ${shape.namespaces * shape.servicesPerNamespace} ServiceEntries; ` +
      `${N} proxies (${REPLICAS} per workload) over ${C} HTTP/2 connections${flags.tls ? ' (TLS)' : ' (plaintext port)'}, connecting ${Number(flags.batch) > 0 ? `in waves of ${flags.batch}` : 'all at once'}; SDS over ADS ${flags['no-sds'] ? 'off' : 'on'}`);

    // ---- meshd ----
    const host = children.start('meshd', MESHD_HOST, serverArgs(flags['cpu-prof']));
    const started = await host.call<HostStarted>('start', { configDir: mesh.dir });
    const accounts = [...new Map(mesh.workloads.map((w) => [`${w.namespace}/${w.serviceAccount}`, w])).values()];
    const minted = await host.call<string[]>('tokens', { identities: accounts.map((w) => ({ namespace: w.namespace, serviceAccount: w.serviceAccount })), ttlMs: 48 * 3_600_000 });
    const tokens = Object.fromEntries(accounts.map((w, i) => [`${w.namespace}/${w.serviceAccount}`, minted[i]!]));
    const address = `127.0.0.1:${flags.tls ? started.ports.secureGrpc : started.ports.grpc}`;
    const ca = flags.tls ? started.rootsPem : undefined;

    await host.call('gc');
    const rssIdle = rssBytes(host.pid);
    const cpuStart = cpuSeconds(host.pid);
    const load = children.start('ads-load', LOAD, loadArgs);
    await load.call('connect', { address, ca, connections: C });
    const open = await load.call<AdsOpenResult>('open', {
      workloads: mesh.workloads, proxiesPerWorkload: REPLICAS, tokens, mode: 'envoy', sds: !flags['no-sds'], captureNamespace: CHANGED, batch: Number(flags.batch), timeoutMs: TIMEOUT,
    });
    const sync = summarize(open.syncMs);
    const cpuSync = cpuSeconds(host.pid) - cpuStart;
    const loadCpuSync = cpuSeconds(load.pid);
    const perProxy = Object.entries(open.sample).map(([k, v]) => `${v} ${k}`).join(', ');
    console.log(`  meshd  : initial sync ${open.synced}/${open.proxies} proxies in ${ms(open.allSyncedMs)} (per proxy p50 ${ms(sync.p50)}, p99 ${ms(sync.p99)}); ` +
      `${(open.bytesReceived / 1048576).toFixed(0)} MB received; each sidecar holds ${perProxy}; server CPU ${cpuSync.toFixed(1)} s, load process CPU ${loadCpuSync.toFixed(1)} s; failures: ${JSON.stringify(open.failures)}`);
    await sleep(2000);
    await host.call('gc');
    await sleep(500);
    const rssConnected = rssBytes(host.pid);
    const connected = await host.call<number>('connected');
    const mem = await host.call<NodeJS.MemoryUsage & { mallocedMemory: number; peakMallocedMemory: number }>('memory');
    console.log(`  meshd  : ${connected} streams open; server RSS idle ${mb(rssIdle)}, with ${N} proxies ${mb(rssConnected)} (${((rssConnected - rssIdle) / N / 1024).toFixed(1)} KB/proxy; ` +
      `V8 heap used ${mb(mem.heapUsed)} of ${mb(mem.heapTotal)} committed, external ${mb(mem.external)} of which ArrayBuffers ${mb(mem.arrayBuffers)}, V8 malloc ${mb(mem.mallocedMemory)} (peak ${mb(mem.peakMallocedMemory)}))`);
    if (flags['heap-snapshot']) console.log(`  heap snapshot: ${await host.call<string>('heapSnapshot', { path: flags['heap-snapshot'] })}`);

    // The change, repeated: PERMISSIVE→STRICT, back, and so on; each trial measured on its own.
    const trials: Trial[] = [];
    for (let t = 0; t < CHANGES; t++) {
      const mode = t % 2 === 0 ? 'STRICT' : 'PERMISSIVE';
      const cpuBefore = cpuSeconds(host.pid);
      await host.call('loopDelayReset');
      await load.call('change', { file: policyFile, content: peerAuthenticationYaml(CHANGED, mode), namespace: CHANGED });
      const conv = await load.call<Convergence>('awaitConvergence', { quietMs: 1500, timeoutMs: TIMEOUT });
      const trial: Trial = { mode, conv, cpu: cpuSeconds(host.pid) - cpuBefore, loop: await host.call<LoopDelay>('loopDelay') };
      trials.push(trial);
      describeConvergence(`meshd  #${t + 1} →${mode}`, conv);
      console.log(`  meshd  #${t + 1}: server CPU ${trial.cpu.toFixed(2)} s; event-loop delay max ${ms(trial.loop.maxMs)} (${trial.loop.gcMaxMs > 0 ? `longest GC pause ${ms(trial.loop.gcMaxMs)}, ${trial.loop.gcMaxKind}` : 'no GC pause'})`);
    }
    const rssAfter = rssBytes(host.pid);
    console.log(`  meshd  : RSS after the changes ${mb(rssAfter)}`);
    const { before, after } = await load.call<{ before: Map<string, Buffer>; after: Map<string, Buffer> }>('captured');
    const tls = flags.tls ? await host.call<{ keyPem: string; chainPem: string }>('servingCert') : undefined;
    await load.call('close');
    await load.stop();
    await host.call('stop').catch(() => undefined);
    await host.stop();

    // ---- ceiling ----
    const ceilingTrials: Convergence[] = [];
    if (!flags['no-ceiling'] && after.size > 0) {
      await writeFile(policyFile, peerAuthenticationYaml(CHANGED, 'PERMISSIVE'));
      await sleep(300);
      const bare = children.start('bare-server', BARE_SERVER, serverArgs(flags['cpu-prof']));
      const { port } = await bare.call<{ port: number }>('start', { mode: 'ads', before, after, watchFile: policyFile, debounceMs: 100, tls });
      const load2 = children.start('ads-load', LOAD, loadArgs);
      await load2.call('connect', { address: `127.0.0.1:${port}`, ca, connections: C });
      const open2 = await load2.call<AdsOpenResult>('open', {
        workloads: mesh.workloads, proxiesPerWorkload: REPLICAS, tokens, mode: 'lds-only', sds: false, expectInitial: [...before.keys()], batch: Number(flags.batch), timeoutMs: TIMEOUT,
      });
      while ((await bare.call<number>('connected')) < N) await sleep(100);
      console.log(`  ceiling: ${open2.synced}/${open2.proxies} streams open on the bare server`);
      await sleep(1000);
      for (let t = 0; t < CHANGES; t++) {
        const mode = t % 2 === 0 ? 'STRICT' : 'PERMISSIVE';
        const pushed = bare.once<{ startedAt: number; endedAt: number; written: number }>('pushed', TIMEOUT);
        const t0 = await load2.call<number>('change', { file: policyFile, content: peerAuthenticationYaml(CHANGED, mode), namespace: CHANGED });
        const conv = await load2.call<Convergence>('awaitConvergence', { quietMs: 1000, timeoutMs: TIMEOUT });
        const p = await pushed;
        ceilingTrials.push(conv);
        describeConvergence(`ceiling #${t + 1} →${mode}`, conv);
        console.log(`  ceiling #${t + 1}: bare server wrote ${p.written} responses from ${ms(p.startedAt - t0)} to ${ms(p.endedAt - t0)} after the file write`);
      }
      await load2.call('close');
      await load2.stop();
      await bare.call('stop').catch(() => undefined);
      await bare.stop();
    }

    // The trial with the median p99 stands for each side (the machine is shared; one trial can be unlucky).
    const real = medianTrial(trials.map((x) => x.conv));
    const ceiling = ceilingTrials.length ? medianTrial(ceilingTrials) : undefined;
    const m = summarize(real.convergeMs);
    const c = ceiling ? summarize(ceiling.convergeMs) : undefined;
    const cpuChange = median(trials.map((x) => x.cpu));
    const loopMax = median(trials.map((x) => x.loop.maxMs));
    const ratio = (a: number, b: number | undefined): number | undefined => (b !== undefined && b > 0 ? a / b : undefined);
    const complete = trials.every((x) => x.conv.converged === x.conv.expected && x.conv.expected > 0);
    const scoped = trials.every((x) => x.conv.proxiesPushed === x.conv.expected && x.conv.unexpectedLds === 0);
    const rows: Row[] = [
      { metric: `PA ${CHANGED} flip (${CHANGES} trials, median): ${real.expected} proxies ACK new LDS, p50`, measured: ms(m.p50), ceiling: c && ms(c.p50), ratio: ratio(m.p50, c?.p50), target: '', pass: undefined },
      { metric: 'PA change: convergence p99 (from file write)', measured: ms(m.p99), ceiling: c && ms(c.p99), ratio: ratio(m.p99, c?.p99), target: '< 5 s, ≤ 2x', pass: complete && m.p99 < 5000 && (c === undefined || m.p99 <= 2 * c.p99) },
      { metric: 'PA change: convergence max', measured: ms(m.max), ceiling: c && ms(c.max), ratio: ratio(m.max, c?.max), target: '', pass: undefined },
      { metric: 'PA change: pushed exactly the proxies of that namespace', measured: scoped ? 'yes' : 'no', target: `${real.expected} proxies`, pass: scoped },
      { metric: 'PA change: server CPU seconds (median)', measured: `${cpuChange.toFixed(2)} s`, target: '', pass: undefined },
      { metric: 'PA change: server event-loop delay max (median)', measured: ms(loopMax), target: '', pass: undefined },
      { metric: `initial sync of ${N} proxies (CDS, EDS, LDS, RDS${flags['no-sds'] ? '' : ', SDS'})`, measured: ms(open.allSyncedMs), target: '', pass: undefined },
      { metric: 'initial sync: server CPU seconds', measured: `${cpuSync.toFixed(1)} s`, target: '', pass: undefined },
      { metric: `server RSS with ${N} proxies connected`, measured: mb(rssConnected), target: '≤ 1536 MB', pass: rssConnected <= 1536 * 1048576 },
    ];
    printTable(`bench:xds summary (${flags.tls ? 'TLS' : 'plaintext'} gRPC; ceiling = bare grpc-js server replaying meshd's bytes, same trigger, same streams)`, rows);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

runBench(main, flags['cpu-prof']);
