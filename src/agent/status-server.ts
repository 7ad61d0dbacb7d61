import type { Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import { HandlerErrors } from '../common/handler-errors.js';
import { startHttpServer, type HttpHandler, type HttpServerHandle } from '../server/http-server.js';
import type { MeshdAgent } from './agent.js';

/**
 * The agent's status port, as pilot-agent serves one (15020): GET /healthz/ready is 200 while the
 * agent holds a valid SVID for the workload and 503 otherwise, with the reason in the body (no
 * certificate yet; expired and renewing with the token; no credential at all); GET /metrics is
 * the agent's Prometheus text. Read-only, and no key or token ever appears in a reply.
 */
export interface StatusServerOptions {
  host: string;
  port: number;
  agent: MeshdAgent;
  registry: Registry;
  logger: Logger;
}

export async function startStatusServer(opts: StatusServerOptions): Promise<HttpServerHandle> {
  const { agent, registry } = opts;
  const ready: HttpHandler = async () => {
    const now = agent.clockNow();
    const c = agent.certificate();
    const state = await agent.credentialState();
    if (c !== undefined && now >= c.notBefore && now < c.notAfter) {
      return { body: `ready: SVID ${agent.spiffeId} valid until ${new Date(c.notAfter).toISOString()}\n` };
    }
    const why = c === undefined ? 'no certificate yet' : `the certificate expired at ${new Date(c.notAfter).toISOString()}`;
    const next = state.kind === 'token' ? 'requesting a new one with the join token' : state.detail ?? 'no credential';
    return { status: 503, body: `not ready: ${why}; ${next}\n` };
  };
  const routes = new Map<string, HttpHandler>([
    ['/healthz/ready', ready],
    ['/metrics', async () => ({ contentType: registry.contentType, body: await registry.metrics() })],
  ]);
  const logger = opts.logger.child({ component: 'agent-status' });
  const handle = await startHttpServer(opts.host, opts.port, routes, { name: 'agent-status', logger, errors: new HandlerErrors({ logger, registry }) });
  logger.info({ address: `${opts.host}:${handle.port}` }, 'agent status port listening (/healthz/ready, /metrics)');
  return handle;
}
