import { Counter, Gauge, type Registry } from 'prom-client';
import type { MeshdAgent } from './agent.js';
import type { CredentialKind } from './credentials.js';

/**
 * The agent's own series, read from its state when scraped (nothing to keep in step):
 *
 *   meshd_agent_credential_state{credential="svid"|"token"|"none"}  1 for what the agent would
 *       present to meshd now; "none" = neither a valid SVID nor a usable token (alert on it)
 *   meshd_agent_certificate_expiry_timestamp_seconds  notAfter of the SVID it holds (Istio's
 *       citadel_server_cert_chain_expiry_timestamp has the same meaning for istiod's own)
 *   meshd_agent_renewals_total{credential}            certificates received, by what was presented
 *   meshd_agent_renewal_failures_total                failed requests (each retried)
 *
 * The xDS proxy adds its own (xds-proxy.ts).
 */
const KINDS: readonly CredentialKind[] = ['svid', 'token', 'none'];

export function registerAgentMetrics(registry: Registry, agent: MeshdAgent): void {
  new Gauge({
    name: 'meshd_agent_credential_state',
    help: 'What the agent presents to meshd now: 1 for svid (its valid SVID), token (the join token: no valid SVID) or none (neither: it cannot renew).',
    labelNames: ['credential'],
    registers: [registry],
    async collect() {
      const { kind } = await agent.credentialState();
      for (const k of KINDS) this.set({ credential: k }, k === kind ? 1 : 0);
    },
  });
  new Gauge({
    name: 'meshd_agent_certificate_expiry_timestamp_seconds',
    help: 'notAfter (Unix seconds) of the workload SVID the agent holds.',
    registers: [registry],
    collect() {
      const c = agent.certificate();
      if (c === undefined) this.reset();
      else this.set(Math.floor(c.notAfter / 1000));
    },
  });
  new Counter({
    name: 'meshd_agent_renewals_total',
    help: 'Workload certificates the agent received, by what it presented: svid or token.',
    labelNames: ['credential'],
    registers: [registry],
    collect() {
      const by = agent.status().renewalsBy;
      this.reset();
      this.inc({ credential: 'svid' }, by.svid);
      this.inc({ credential: 'token' }, by.token);
    },
  });
  new Counter({
    name: 'meshd_agent_renewal_failures_total',
    help: 'Certificate requests to meshd that failed (each is retried with backoff).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(agent.status().failures);
    },
  });
}
