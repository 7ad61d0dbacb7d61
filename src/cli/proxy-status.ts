import { Command, Option } from 'commander';
import { MONITORING_ADDR } from '../common/defaults.js';
import type { ConnectionStatus } from '../xds/core/connection-status.js';
import { formatProxyStatus } from './proxy-status-table.js';

/** `meshd proxy-status`: what every connected proxy was sent and acknowledged, like istioctl's. */
export function registerProxyStatus(program: Command): void {
  program
    .command('proxy-status')
    .description("each connected proxy's identity and, per type, whether it is SYNCED, STALE or NOT SENT (like istioctl proxy-status)")
    .addOption(new Option('--monitoring-addr <host:port>', "meshd's HTTP address").env('MESHD_MONITORING_ADDR').default(MONITORING_ADDR))
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (opts: { monitoringAddr: string; output: 'table' | 'json' }) => {
      const url = `http://${opts.monitoringAddr}/debug/connections`;
      let res: Response;
      try {
        res = await fetch(url);
      } catch (err) {
        throw new Error(`cannot reach meshd at ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
      }
      if (!res.ok) throw new Error(`${url} answered ${res.status}`);
      const connections = (await res.json()) as ConnectionStatus[];
      process.stdout.write(opts.output === 'json' ? JSON.stringify(connections, null, 2) + '\n' : formatProxyStatus(connections));
    });
}
