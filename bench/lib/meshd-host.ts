/**
 * The server side of bench:sds and bench:xds: a real meshd (startMeshd, as `meshd serve`
 * wires it) in its own process, driven by the orchestrator over IPC. Running it here rather
 * than through the CLI gives the benchmark three things `meshd serve` has no flag for: the
 * event-loop delay measured inside the server (perf_hooks.monitorEventLoopDelay), token
 * minting without a CLI round trip per identity, and a clock the bench can move forward so
 * that every SVID is due at the same instant (the jitter meshd adds on purpose otherwise
 * spreads a rotation over minutes).
 *
 * It loads meshd from dist/ (the npm scripts build it first): the benchmark measures the code
 * that ships, not tsx's on-the-fly transpile, which wraps every function in a __name() call
 * (esbuild's keepNames) that showed up in the server's CPU profiles.
 */
import { PerformanceObserver, monitorEventLoopDelay, constants as perfConstants, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { systemClock, type Clock } from '../../src/common/clock.js';
import type { RunningMeshd } from '../../src/server/meshd.js';
import { serveIpc } from './ipc.js';

const DIST = new URL('../../dist/', import.meta.url);
if (!existsSync(new URL('server/meshd.js', DIST))) {
  throw new Error(`${fileURLToPath(DIST)} has no build of meshd: run \`npm run build\` (the bench:* scripts do)`);
}
const { startMeshd } = (await import(new URL('server/meshd.js', DIST).href)) as typeof import('../../src/server/meshd.js');
const { silentLogger } = (await import(new URL('common/logger.js', DIST).href)) as typeof import('../../src/common/logger.js');

export interface HostStartParams {
  configDir?: string;
  workloadCertTtlMs?: number;
  rotationFraction?: number;
  svidTickMs?: number;
}

export interface LoopDelay {
  maxMs: number;
  p99Ms: number;
  meanMs: number;
  /** Longest single GC pause, its kind, and all GC pauses added up. */
  gcMaxMs: number;
  gcMaxKind: string;
  gcTotalMs: number;
  /** Longest synchronous part of a core.push() call. */
  pushSyncMaxMs: number;
}

export interface HostStarted {
  ports: { secureGrpc: number; grpc: number; monitoring: number };
  rootsPem: string;
}

let offsetMs = 0;
const clock: Clock = { now: () => Date.now() + offsetMs, timer: systemClock.timer };
let meshd: RunningMeshd | undefined;
let dataDir: string | undefined;
const delay = monitorEventLoopDelay({ resolution: 5 });
delay.enable();
// GC pauses since the last reset: the event-loop delay includes them, so name them apart.
let gcMaxMs = 0;
let gcMaxKind = '';
let gcTotalMs = 0;
let pushSyncMaxMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcTotalMs += e.duration;
    if (e.duration > gcMaxMs) {
      gcMaxMs = e.duration;
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      gcMaxKind = kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR ? 'major' : kind === perfConstants.NODE_PERFORMANCE_GC_MINOR ? 'minor' : kind === perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL ? 'incremental' : 'other';
    }
  }
}).observe({ entryTypes: ['gc'] });

async function stop(): Promise<void> {
  await meshd?.stop(2000);
  meshd = undefined;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}

serveIpc({
  async start(p: HostStartParams): Promise<HostStarted> {
    dataDir = await mkdtemp(join(tmpdir(), 'meshd-bench-data-'));
    meshd = await startMeshd({
      dataDir,
      configDir: p.configDir,
      trustDomain: 'cluster.local',
      secureGrpcAddr: '127.0.0.1:0',
      grpcAddr: '127.0.0.1:0',
      monitoringAddr: '127.0.0.1:0',
      workloadCertTtlMs: p.workloadCertTtlMs,
      rotationFraction: p.rotationFraction,
      svidTickMs: p.svidTickMs,
      logger: silentLogger(),
      clock,
    });
    // Diagnostic: how long the synchronous part of one core.push() (selecting and queueing the
    // affected streams) holds the event loop.
    const core = meshd.core;
    const push = core.push.bind(core);
    core.push = (request) => {
      const started = performance.now();
      try {
        return push(request);
      } finally {
        pushSyncMaxMs = Math.max(pushSyncMaxMs, performance.now() - started);
      }
    };
    return { ports: meshd.ports, rootsPem: meshd.ca.trustBundle().rootsPem.join('') };
  },
  async tokens(p: { identities: Array<{ namespace: string; serviceAccount: string }>; ttlMs: number }): Promise<string[]> {
    const out: string[] = [];
    for (const id of p.identities) out.push((await meshd!.tokens.issue(id, p.ttlMs)).token);
    return out;
  },
  /** Workload SVIDs from meshd's CA: what agents already hold when they renew with them. */
  async agentSvids(p: { identities: Array<{ namespace: string; serviceAccount: string }> }): Promise<Array<{ spiffeId: string; keyPem: string; chainPem: string }>> {
    return Promise.all(p.identities.map(async (id) => {
      const spiffeId = `spiffe://cluster.local/ns/${id.namespace}/sa/${id.serviceAccount}`;
      const svid = await meshd!.ca.issue({ spiffeId });
      return { spiffeId, keyPem: svid.keyPem, chainPem: svid.chainPem };
    }));
  },
  /**
   * The CA's own minting ceiling: the same CSRs signed straight through CertificateAuthority.signCsr,
   * all at once as the storm asks, with no gRPC, TLS or authentication around it.
   */
  async mintCeiling(p: { csrs: Array<{ spiffeId: string; csrPem: string }> }): Promise<{ minted: number; elapsedMs: number }> {
    const started = performance.now();
    await Promise.all(p.csrs.map((c) => meshd!.ca.signCsr({ spiffeId: c.spiffeId, csrPem: c.csrPem, ttlMs: 86_400_000 })));
    return { minted: p.csrs.length, elapsedMs: performance.now() - started };
  },
  /** A serving key pair from meshd's CA for the bare ceiling server (same TLS cost as meshd's). */
  async servingCert(): Promise<{ keyPem: string; chainPem: string }> {
    const svid = await meshd!.ca.issue({ spiffeId: 'spiffe://cluster.local/ns/istio-system/sa/bench', dnsNames: ['localhost'] });
    return { keyPem: svid.keyPem, chainPem: svid.chainPem };
  },
  advanceClock(p: { ms: number }): number {
    offsetMs += p.ms;
    return offsetMs;
  },
  connected(): number {
    return meshd!.core.connectedCount;
  },
  gc(): boolean {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    return gc !== undefined;
  },
  loopDelayReset(): void {
    delay.reset();
    gcMaxMs = 0;
    gcMaxKind = '';
    gcTotalMs = 0;
    pushSyncMaxMs = 0;
  },
  /** Event-loop delay since the last reset, ms (the histogram records in ns), and the GC pauses within it. */
  loopDelay(): LoopDelay {
    return { maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6, meanMs: delay.mean / 1e6, gcMaxMs, gcMaxKind, gcTotalMs, pushSyncMaxMs };
  },
  /** Where the memory is: V8 heap vs buffers outside it (response bytes, sockets). */
  memory(): NodeJS.MemoryUsage & { mallocedMemory: number; peakMallocedMemory: number } {
    const v8 = getHeapStatistics();
    return { ...process.memoryUsage(), mallocedMemory: v8.malloced_memory, peakMallocedMemory: v8.peak_malloced_memory };
  },
  heapSnapshot(p: { path: string }): string {
    return writeHeapSnapshot(p.path);
  },
  async metrics(): Promise<string> {
    return meshd!.registry.metrics();
  },
  async stop(): Promise<void> {
    await stop();
    // A normal exit, so --cpu-prof writes its profile.
    setImmediate(() => process.exit(0));
  },
});

process.once('SIGTERM', () => void stop().finally(() => process.exit(0)));
