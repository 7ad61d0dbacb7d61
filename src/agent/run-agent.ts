import type { LeafKeyType } from '../ca/types.js';
import { AGENT_ROTATION, WORKLOAD_CERT_TTL_MS } from '../common/defaults.js';
import type { RotationPolicy } from '../common/renewal-policy.js';
import { Registry } from 'prom-client';
import { MeshdAgent, type AgentOptions } from './agent.js';
import { registerAgentMetrics } from './agent-metrics.js';
import { parseHostPort } from '../server/addresses.js';
import { XdsProxy } from './xds-proxy.js';
import { controlPlaneSpiffeId } from '../mesh/spiffe-identity.js';
import { meshdTarget } from './meshd-target.js';

/**
 * `meshd agent` without the CLI: the certificate keeper plus its local servers (the xDS proxy for
 * proxyless gRPC; the SDS server for a local Envoy when asked for).
 */
export interface StartAgentOptions extends Omit<AgentOptions, 'meshdSpiffeId' | 'keyType' | 'ttlMs' | 'rotation' | 'onRenewed'> {
  /** Default ec-p256. */
  keyType?: LeafKeyType;
  /** Default 24h (istio-agent's). */
  ttlMs?: number;
  /** Default istio-agent's: half the lifetime ± 1 %. */
  rotation?: RotationPolicy;
  /** Unix socket of the local xDS proxy; undefined = none. */
  xdsSocket?: string;
  /** Unix socket of the local SDS server; undefined = none. */
  sdsSocket?: string;
  /** host:port of the status port (/healthz/ready, /metrics); undefined = none. */
  statusAddress?: string;
}

export interface RunningAgent {
  agent: MeshdAgent;
  /** The agent's series (meshd_agent_*). */
  registry: Registry;
  /** The status port actually bound (for :0); undefined without one. */
  statusPort?: number;
  /** Resolves once a certificate set is on disk. */
  ready(): Promise<void>;
  stop(): Promise<void>;
}


export async function startAgent(opts: StartAgentOptions): Promise<RunningAgent> {
  const log = opts.logger;
  const serverId = controlPlaneSpiffeId(opts.trustDomain);
  // One target for every channel to meshd: several replicas' addresses become one list (pick_first).
  const meshdAddress = meshdTarget(opts.meshdAddress);
  const agent = new MeshdAgent({
    namespace: opts.namespace,
    serviceAccount: opts.serviceAccount,
    trustDomain: opts.trustDomain,
    tokenFile: opts.tokenFile,
    outDir: opts.outDir,
    meshdAddress,
    meshdSpiffeId: serverId,
    ...(opts.caRootFile !== undefined ? { caRootFile: opts.caRootFile } : {}),
    keyType: opts.keyType ?? 'ec-p256',
    ttlMs: opts.ttlMs ?? WORKLOAD_CERT_TTL_MS,
    rotation: opts.rotation ?? AGENT_ROTATION,
    ...(opts.backoff !== undefined ? { backoff: opts.backoff } : {}),
    ...(opts.random !== undefined ? { random: opts.random } : {}),
    logger: log.child({ component: 'agent' }),
    clock: opts.clock,
  });
  const registry = new Registry();
  registerAgentMetrics(registry, agent);
  const stoppers: Array<() => Promise<void>> = [];
  let statusPort: number | undefined;
  try {
    await agent.start();
    stoppers.push(() => agent.stop());
    if (opts.xdsSocket !== undefined) {
      const proxy = new XdsProxy({
        socketPath: opts.xdsSocket,
        meshdAddress,
        meshdSpiffeId: serverId,
        credential: () => agent.credential(),
        trustedRoots: () => agent.trustedRoots(),
        clock: opts.clock,
        ...(opts.random !== undefined ? { random: opts.random } : {}),
        ...(opts.backoff !== undefined ? { backoff: opts.backoff } : {}),
        ...(registry !== undefined ? { registry } : {}),
        logger: log,
      });
      await proxy.start();
      stoppers.unshift(() => proxy.stop());
    }
    if (opts.sdsSocket !== undefined) {
      const { startLocalSds } = await import('./local-sds.js');
      // The bundles of the trust domains meshd federates with, served on to the local Envoy.
      const { FederatedBundleFeed } = await import('./federated-bundle-feed.js');
      const feed = new FederatedBundleFeed({
        meshdAddress, meshdSpiffeId: serverId, trustDomain: opts.trustDomain,
        nodeId: `meshd-agent~${agent.identity().spiffeId}`, logger: log.child({ component: 'federated-bundles' }), clock: opts.clock,
        credentials: async () => {
          const c = agent.certificate();
          return c === undefined ? undefined : { keyPem: c.set.keyPem, chainPem: c.set.certChainPem, rootsPem: await agent.trustedRoots() };
        },
      });
      feed.start();
      stoppers.unshift(async () => feed.stop());
      const sds = await startLocalSds({ agent, socketPath: opts.sdsSocket, logger: log, clock: opts.clock, foreign: feed });
      stoppers.unshift(() => sds.stop());
    }
    if (opts.statusAddress !== undefined) {
      const { host, port } = parseHostPort(opts.statusAddress, '--status-address');
      const { startStatusServer } = await import('./status-server.js');
      const status = await startStatusServer({ host, port, agent, registry, logger: log });
      statusPort = status.port;
      stoppers.unshift(() => status.close());
    }
  } catch (e) {
    for (const s of stoppers) await s().catch(() => undefined);
    throw e;
  }
  let stopped: Promise<void> | undefined;
  return {
    agent,
    registry,
    ...(statusPort !== undefined ? { statusPort } : {}),
    ready: () => agent.ready(),
    stop: () => {
      stopped ??= (async () => {
        for (const s of stoppers) await s().catch((e: unknown) => log.warn({ err: String(e) }, 'agent part failed to stop'));
        log.info('meshd agent stopped');
      })();
      return stopped;
    },
  };
}
