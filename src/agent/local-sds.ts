import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import type { Authenticator, Identity } from '../auth/identity.js';
import { splitPemCertificates } from '../csr/csr-service.js';
import { DiscoveryCore } from '../xds/core/index.js';
import { GeneratorError } from '../xds/core/types.js';
import { addDiscoveryServices } from '../xds/services/add-discovery-services.js';
import { TypeUrl } from '../envoy/type-urls.js';
import { SecretGenerator } from '../svid/secret-generator.js';
import { bundleSetBuilder, type ForeignRoots, type Svid, type SvidSource } from '../svid/svid-source.js';
import type { ForeignRootsMap } from './federated-bundle-feed.js';
import type { AgentCertificate, MeshdAgent } from './agent.js';
import { AGENT_SHUTDOWN_GRACE_MS } from '../common/defaults.js';
import { shutdownGrpcServer } from '../common/grpc-shutdown.js';

/**
 * SDS for a local Envoy on a Unix socket, as istio-agent (./var/run/secrets/workload-spiffe-uds/
 * socket) and SPIRE's agent serve it, so a sidecar's private key never crosses the network
 * either. The same discovery core, gRPC adapters and secret generator as meshd (SDS and ADS,
 * SotW and delta), serving from the agent's current files under meshd's secret names:
 * `default`, `ROOTCA`, the workload's own SPIFFE ID, `spiffe://<trust domain>` and `ALL`.
 *
 * Who may ask: whoever can open the socket. It is created 0600, so that is the agent's user (and
 * root); every caller gets the agent's one identity and nothing else (another SPIFFE ID or trust
 * domain is PERMISSION_DENIED, as on meshd). A renewal pushes the new secrets on open streams.
 */
export interface LocalSdsOptions {
  agent: MeshdAgent;
  socketPath: string;
  logger: Logger;
  clock: Clock;
  /** The foreign trust domains' bundles (FederatedBundleFeed): served in ALL and as spiffe://<td>, pushed when they change. */
  foreign?: { current(): ForeignRootsMap; onChange(listener: () => void): () => void };
}

/**
 * The agent's certificate set as an SVID source: requests wait for the first set; the own bundle
 * is the set's root-cert.pem, and `foreign` adds the federated trust domains' bundles (the
 * sequence moves when either changes).
 */
export function agentSvidSource(agent: Pick<MeshdAgent, 'ready' | 'certificate' | 'identity'>, foreign?: ForeignRoots): SvidSource {
  const trustDomain = agent.identity().trustDomain;
  let svidOf: AgentCertificate | undefined;
  let svid: Svid | undefined;
  let rootsText: string | undefined;
  let own: { trustDomain: string; rootsPem: readonly string[] } | undefined;
  const build = bundleSetBuilder(foreign);
  const current = async (): Promise<AgentCertificate> => {
    await agent.ready();
    const c = agent.certificate();
    if (c === undefined) throw new GeneratorError(status.UNAVAILABLE, 'the agent has no certificate yet');
    return c;
  };
  return {
    async svid() {
      const c = await current();
      // One object per certificate set: the generator encodes each once.
      if (c !== svidOf || svid === undefined) {
        svidOf = c;
        svid = { chainPem: c.set.certChainPem, keyPem: c.set.keyPem };
      }
      return svid;
    },
    async bundles() {
      const c = await current();
      if (c.set.rootCertPem !== rootsText || own === undefined) {
        rootsText = c.set.rootCertPem;
        own = { trustDomain, rootsPem: splitPemCertificates(rootsText) };
      }
      return build(own);
    },
  };
}

/** Everyone on the socket is the agent's workload. */
function socketAuthenticator(identity: Identity): Authenticator {
  return { authenticate: async () => identity };
}

export async function startLocalSds(opts: LocalSdsOptions): Promise<{ stop(): Promise<void> }> {
  const { agent, socketPath } = opts;
  const log = opts.logger.child({ component: 'local-sds' });
  const identity: Identity = { ...agent.identity(), via: 'local-socket' };
  const core = new DiscoveryCore({ logger: log, registry: new Registry(), clock: opts.clock, controlPlaneId: `meshd-agent ${identity.spiffeId}` });
  core.register(new SecretGenerator({ source: agentSvidSource(agent, opts.foreign && (() => opts.foreign!.current())), logger: log }));
  const unsubscribe = agent.onRenewed(() => void core.push({ typeUrls: [TypeUrl.Secret], reason: 'secret' }));
  const unsubscribeForeign = opts.foreign?.onChange(() => void core.push({ typeUrls: [TypeUrl.Secret], reason: 'federated-bundle' }));

  await mkdir(dirname(socketPath), { recursive: true, mode: 0o755 });
  const existing = await lstat(socketPath).catch(() => undefined);
  if (existing?.isSocket()) await unlink(socketPath);
  else if (existing) throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
  const server = new Server({ 'grpc.max_concurrent_streams': 100_000 });
  addDiscoveryServices(server, { core, authenticator: socketAuthenticator(identity), logger: log });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(),
    (err) => (err ? reject(new Error(`cannot listen on unix:${socketPath}: ${err.message}`)) : resolve())));
  await chmod(socketPath, 0o600);
  log.info({ socket: socketPath, spiffeId: identity.spiffeId }, 'local SDS listening');

  return {
    async stop() {
      unsubscribe();
      unsubscribeForeign?.();
      core.close(status.UNAVAILABLE, 'meshd agent is shutting down');
      await shutdownGrpcServer(server, AGENT_SHUTDOWN_GRACE_MS);
      await unlink(socketPath).catch(() => undefined);
    },
  };
}
