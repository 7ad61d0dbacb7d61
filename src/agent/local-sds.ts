import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import type { Authenticator, Identity } from '../auth/identity.js';
import { splitPemCertificates } from '../csr/csr-service.js';
import { DiscoveryCore } from '../xds/core/index.js';
import { createResource, resourceFromAny } from '../xds/core/resource.js';
import type { GenerateRequest, Generator, ProxyInfo, Resource } from '../xds/core/types.js';
import { GeneratorError } from '../xds/core/types.js';
import { addDiscoveryServices } from '../xds/services/add-discovery-services.js';
import { TypeUrl } from '../envoy/type-urls.js';
import { classifySecretName, DEFAULT_SECRET, ROOTCA_SECRET } from '../svid/secret-names.js';
import { spiffeValidatorSecret, tlsCertificateSecretAny, trustedCaSecret } from '../svid/secret-resources.js';
import type { MeshdAgent } from './agent.js';

/**
 * SDS for a local Envoy on a Unix socket, as istio-agent (./var/run/secrets/workload-spiffe-uds/
 * socket) and SPIRE's agent serve it, so a sidecar's private key never crosses the network
 * either. The same discovery core and gRPC adapters as meshd (SDS and ADS, SotW and delta), with
 * a secret generator backed by the agent's current files and meshd's secret names: `default`,
 * `ROOTCA`, the workload's own SPIFFE ID, `spiffe://<trust domain>` and `ALL`.
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
}

class AgentSecretGenerator implements Generator {
  readonly typeUrl = TypeUrl.Secret;

  constructor(private readonly agent: MeshdAgent) {}

  async generate(proxy: ProxyInfo, request: GenerateRequest): Promise<Resource[]> {
    const id = proxy.identity;
    const names = request.names ?? new Set([DEFAULT_SECRET, ROOTCA_SECRET, id.spiffeId, `spiffe://${id.trustDomain}`]);
    const classified = [...names].map((n) => classifySecretName(n, id.spiffeId, id.trustDomain));
    const denied = classified.find((c) => c.kind === 'denied');
    if (denied?.kind === 'denied') throw new GeneratorError(status.PERMISSION_DENIED, `secret "${denied.name}" refused: ${denied.reason}`);
    await this.agent.ready();
    const current = this.agent.certificate();
    if (current === undefined) throw new GeneratorError(status.UNAVAILABLE, 'the agent has no certificate yet');
    const roots = splitPemCertificates(current.set.rootCertPem);
    const out: Resource[] = [];
    for (const c of classified) {
      if (c.kind === 'certificate') out.push(resourceFromAny(c.name, tlsCertificateSecretAny(c.name, current.set.certChainPem, current.set.keyPem)));
      else if (c.kind === 'bundle') {
        const value = c.validator === 'spiffe' ? spiffeValidatorSecret(c.name, new Map([[id.trustDomain, roots]])) : trustedCaSecret(c.name, roots);
        out.push(createResource(this.typeUrl, c.name, value));
      }
    }
    return out;
  }
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
  core.register(new AgentSecretGenerator(agent));
  const unsubscribe = agent.onRenewed(() => void core.push({ typeUrls: [TypeUrl.Secret], reason: 'secret' }));

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
      core.close(status.UNAVAILABLE, 'meshd agent is shutting down');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, 2000);
        server.tryShutdown(() => { clearTimeout(timer); resolve(); });
      });
      await unlink(socketPath).catch(() => undefined);
    },
  };
}
