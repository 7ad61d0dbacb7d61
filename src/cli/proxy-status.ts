import { Command, Option } from 'commander';
import { MONITORING_ADDR } from '../common/defaults.js';
import type { ConnectionStatus } from '../xds/core/connection-status.js';
import { PRESENCE_TTL_MS } from '../server/replica-presence.js';
import { formatProxyStatus, type ReportedConnection, type UnreportedProxy } from './proxy-status-table.js';
import { storeKeyFileOption, storeOption } from './options.js';
import { withCliStore } from './store-access.js';

/** How long one replica gets to answer before its proxies are shown as unreported. */
const REPLICA_TIMEOUT_MS = 5_000;

/** `meshd proxy-status`: what every connected proxy was sent and acknowledged, like istioctl's. */
export function registerProxyStatus(program: Command): void {
  program
    .command('proxy-status')
    .description("each connected proxy's identity and, per type, whether it is SYNCED, STALE or NOT SENT (like istioctl proxy-status); with --store, across every replica")
    .addOption(new Option('--monitoring-addr <host:port>', "meshd's HTTP address").env('MESHD_MONITORING_ADDR').default(MONITORING_ADDR))
    .addOption(storeOption())
    .addOption(storeKeyFileOption())
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (opts: { monitoringAddr: string; store?: string; storeKeyFile?: string; output: 'table' | 'json' }) => {
      if (opts.store) {
        const { connections, unreported } = await acrossReplicas({ store: opts.store, storeKeyFile: opts.storeKeyFile });
        process.stdout.write(opts.output === 'json' ? JSON.stringify({ connections, unreported }, null, 2) + '\n' : formatProxyStatus(connections, unreported));
        return;
      }
      const connections = await replicaConnections(opts.monitoringAddr);
      process.stdout.write(opts.output === 'json' ? JSON.stringify(connections, null, 2) + '\n' : formatProxyStatus(connections));
    });
}

/** One meshd's streams, from its /debug/connections. */
async function replicaConnections(address: string): Promise<ConnectionStatus[]> {
  const url = `http://${address}/debug/connections`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(REPLICA_TIMEOUT_MS) });
  } catch (err) {
    throw new Error(`cannot reach meshd at ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
  }
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return (await res.json()) as ConnectionStatus[];
}

/**
 * Every replica the store knows, asked for its own streams (the store records which replica
 * holds which proxy, not their sync state). A proxy recorded on a replica whose heartbeat
 * stopped, or that does not answer from here, is listed with the reason instead.
 */
async function acrossReplicas(flags: { store: string; storeKeyFile?: string }): Promise<{ connections: ReportedConnection[]; unreported: UnreportedProxy[] }> {
  const listing = await withCliStore(flags, (store) => store.proxies.list(Date.now(), PRESENCE_TTL_MS));
  const connections: ReportedConnection[] = [];
  const unreported: UnreportedProxy[] = [];
  await Promise.all(listing.replicas.map(async (replica) => {
    const recorded = listing.proxies.filter((p) => p.replicaId === replica.id);
    if (!replica.alive) {
      for (const p of recorded) unreported.push({ proxyId: p.proxyId, replica: replica.id, why: `replica stopped heartbeating at ${new Date(replica.heartbeatAt).toISOString()}` });
      return;
    }
    try {
      for (const c of await replicaConnections(replica.address)) connections.push({ ...c, replica: replica.id });
    } catch (err) {
      for (const p of recorded) unreported.push({ proxyId: p.proxyId, replica: replica.id, why: (err as Error).message });
    }
  }));
  return { connections, unreported };
}
