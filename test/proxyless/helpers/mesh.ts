import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../src/common/logger.js';
import { systemClock } from '../../../src/common/clock.js';
import { AGENT_ROTATION } from '../../../src/common/defaults.js';
import { startAgent, type RunningAgent } from '../../../src/agent/run-agent.js';
import { buildGrpcBootstrap, defaultXdsSocket, xdsServerUri } from '../../../src/agent/grpc-bootstrap.js';
import { startTestMeshd, type TestMeshd } from '../../e2e/helpers/meshd.js';
import type { ConnectionStatus } from '../../../src/xds/core/index.js';

/**
 * One meshd with a config dir, a `meshd agent` per identity (in-process, each with its own cert
 * dir and xDS socket), and gRPC bootstraps, as a proxyless deployment has them:
 *
 *   grpc-server/greeter (server workloads, SA greeter)  ← agent "server"
 *   grpc-client/caller  (client workload, SA caller)    ← agent "client"
 *
 * The service is greeter.grpc-server.svc.cluster.local:7070, backed by the server
 * WorkloadEntries on 127.0.0.1 and their own ports.
 */
export const SERVER_NS = 'grpc-server';
export const CLIENT_NS = 'grpc-client';
export const SERVICE_HOST = `greeter.${SERVER_NS}.svc.cluster.local`;
export const SERVICE_PORT = 7070;
export const TARGET = `xds:///${SERVICE_HOST}:${SERVICE_PORT}`;

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export type Mode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export function policyYaml(mode: Mode | undefined): string {
  if (mode === undefined) return '';
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: ${SERVER_NS}
spec:
  mtls:
    mode: ${mode}
`;
}

export interface ServerWorkload { name: string; port: number; labels?: Record<string, string> }

export function workloadsYaml(servers: readonly ServerWorkload[]): string {
  const docs = [`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: greeter
  namespace: ${SERVER_NS}
spec:
  hosts: [${SERVICE_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: ${SERVICE_PORT}
    name: grpc
    protocol: GRPC
  workloadSelector:
    labels:
      app: greeter
`, `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: caller
  namespace: ${CLIENT_NS}
spec:
  address: 127.0.0.1
  serviceAccount: caller
  labels:
    app: caller
`];
  for (const s of servers) {
    const labels = { app: 'greeter', ...(s.labels ?? {}) };
    docs.push(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ${s.name}
  namespace: ${SERVER_NS}
spec:
  address: 127.0.0.1
  serviceAccount: greeter
  labels:
${Object.entries(labels).map(([k, v]) => `    ${k}: "${v}"`).join('\n')}
  ports:
    grpc: ${s.port}
`);
  }
  return docs.join('---\n');
}

export interface NackRecord { proxy: string; type: string; message: string; version: string }

export interface ProxylessMesh {
  dir: string;
  configDir: string;
  meshd: TestMeshd;
  agents: { server: RunningAgent; client: RunningAgent };
  certDirs: { server: string; client: string };
  /**
   * Bootstrap file for a workload. `instance` gives a second process of the same WorkloadEntry its
   * own node id (as two replicas have), so meshd tells their streams apart.
   */
  bootstrap(kind: 'server' | 'client', workload: string, refreshSeconds?: number, instance?: string): Promise<string>;
  setPolicy(mode: Mode | undefined): Promise<void>;
  setServers(servers: readonly ServerWorkload[]): Promise<void>;
  /** Writes (atomically) another file into the config dir and waits until meshd applied it. */
  writeConfig(file: string, yaml: string): Promise<void>;
  nacks(): NackRecord[];
  /** Closes meshd (its streams end, its port stops listening); the agents keep running. */
  stopMeshd(): Promise<void>;
  /** Starts meshd again on the same ports, data dir and config dir (`meshd` is the new one). */
  startMeshd(): Promise<void>;
  close(): Promise<void>;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

async function configVersion(meshd: TestMeshd): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${meshd.ports.monitoring}/debug/config`);
  return ((await r.json()) as { version: number }).version;
}

/** Waits until meshd applied a config change (its snapshot version moved). */
async function waitForNewConfig(meshd: TestMeshd, before: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if ((await configVersion(meshd)) > before) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('meshd did not apply the config change within 10 s');
}

export interface ProxylessMeshOptions {
  mode?: Mode;
  servers: readonly ServerWorkload[];
  /** Certificate lifetime the agents ask for. */
  ttlMs?: number;
  /** Fraction of the lifetime after which the agents renew (default istio-agent's 0.5). */
  rotationFraction?: number;
  /** Lifetime of the agents' join tokens (default 1h). */
  tokenTtlMs?: number;
  /** The agents' retry backoff (default 100 ms doubling to 1 s). */
  backoff?: { initialMs: number; maxMs: number };
  /** meshd's SVID sweep tick (default 200 ms). */
  svidTickMs?: number;
}

export async function startProxylessMesh(opts: ProxylessMeshOptions): Promise<ProxylessMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-proxyless-'));
  const configDir = join(dir, 'config');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(configDir);
  await writeFile(join(configDir, 'policy.yaml'), policyYaml(opts.mode));
  await writeFile(join(configDir, 'workloads.yaml'), workloadsYaml(opts.servers));
  // A data dir of its own, and (after the first start, on ports the kernel chose) fixed ports, so
  // that stopMeshd/startMeshd bring back the same meshd where the agents look for it.
  const dataDir = join(dir, 'meshd-data');
  const base = { configDir, dataDir, svidTickMs: opts.svidTickMs ?? 200 };
  let meshd: TestMeshd | undefined = await startTestMeshd(base);
  const first = meshd;
  const meshdOptions = {
    ...base,
    secureGrpcAddr: `127.0.0.1:${first.ports.secureGrpc}`, grpcAddr: `127.0.0.1:${first.ports.grpc}`, monitoringAddr: `127.0.0.1:${first.ports.monitoring}`,
  };

  // meshd's own nack view: any NACK from grpc-js-xds is a meshd bug.
  const nacks = new Map<string, NackRecord>();
  const poll = setInterval(() => {
    if (!meshd) return;
    for (const c of meshd.core.connections() as ConnectionStatus[]) {
      for (const ty of c.types) {
        if (ty.lastNack) nacks.set(`${c.connectionId}|${ty.type}|${ty.lastNack.version}`, { proxy: c.proxyId, type: ty.type, message: ty.lastNack.message, version: ty.lastNack.version });
      }
    }
  }, 50);

  const caRoot = join(dir, 'meshd-root.pem');
  await writeFile(caRoot, first.rootsPem());
  const certDirs = { server: join(dir, 'certs-server'), client: join(dir, 'certs-client') };
  const agent = async (kind: 'server' | 'client', ns: string, sa: string): Promise<RunningAgent> => {
    const tokenFile = join(dir, `${kind}.token`);
    await writeFile(tokenFile, await first.token(ns, sa, opts.tokenTtlMs), { mode: 0o600 });
    const running = await startAgent({
      namespace: ns, serviceAccount: sa, trustDomain: 'cluster.local', tokenFile,
      outDir: certDirs[kind], meshdAddress: `127.0.0.1:${first.ports.secureGrpc}`, caRootFile: caRoot,
      ttlMs: opts.ttlMs ?? 3_600_000, xdsSocket: defaultXdsSocket(certDirs[kind]),
      rotation: { fraction: opts.rotationFraction ?? AGENT_ROTATION.fraction, jitter: AGENT_ROTATION.jitter },
      backoff: opts.backoff ?? { initialMs: 100, maxMs: 1000 },
      logger: process.env.MESHD_TEST_AGENT_LOG ? (await import('../../../src/common/logger.js')).createLogger({ level: process.env.MESHD_TEST_AGENT_LOG }).child({ agent: kind }) : silentLogger(), clock: systemClock,
    });
    await running.ready();
    return running;
  };
  const agents = { server: await agent('server', SERVER_NS, 'greeter'), client: await agent('client', CLIENT_NS, 'caller') };

  const current = (): TestMeshd => {
    if (!meshd) throw new Error('meshd is stopped');
    return meshd;
  };
  return {
    dir, configDir, agents, certDirs,
    get meshd() { return current(); },
    async bootstrap(kind, workload, refreshSeconds = 1, instance) {
      const pod = instance === undefined ? workload : `${workload}-${instance}`;
      const file = join(dir, `bootstrap-${pod}.json`);
      const ns = kind === 'server' ? SERVER_NS : CLIENT_NS;
      const b = buildGrpcBootstrap({
        xdsServerUri: xdsServerUri(defaultXdsSocket(certDirs[kind])),
        nodeId: `sidecar~127.0.0.1~${pod}.${ns}~${ns}.svc.cluster.local`,
        namespace: ns, workload, certDir: certDirs[kind], refreshIntervalSeconds: refreshSeconds,
      });
      await writeFile(file, JSON.stringify(b, null, 2));
      return file;
    },
    async setPolicy(mode) {
      const before = await configVersion(current());
      await writeAtomic(join(configDir, 'policy.yaml'), policyYaml(mode));
      await waitForNewConfig(current(), before);
    },
    async setServers(servers) {
      const before = await configVersion(current());
      await writeAtomic(join(configDir, 'workloads.yaml'), workloadsYaml(servers));
      await waitForNewConfig(current(), before);
    },
    async writeConfig(file, yaml) {
      const before = await configVersion(current());
      await writeAtomic(join(configDir, file), yaml);
      await waitForNewConfig(current(), before);
    },
    nacks: () => [...nacks.values()],
    async stopMeshd() {
      const m = meshd;
      meshd = undefined;
      await m?.close();
    },
    async startMeshd() {
      if (meshd) throw new Error('meshd is already running');
      meshd = await startTestMeshd(meshdOptions);
    },
    async close() {
      clearInterval(poll);
      await agents.server.stop();
      await agents.client.stop();
      await meshd?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
