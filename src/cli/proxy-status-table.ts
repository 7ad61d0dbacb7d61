import type { ConnectionStatus } from '../xds/core/connection-status.js';

const COLUMNS = ['cds', 'lds', 'eds', 'rds', 'sds'] as const;

/** A stream as a replica reported it, with that replica's name when several were asked (`--store`). */
export type ReportedConnection = ConnectionStatus & { replica?: string };

/** A proxy the store lists on a replica that did not answer (gone, or unreachable from here). */
export interface UnreportedProxy {
  proxyId: string;
  replica: string;
  why: string;
}

/**
 * istioctl proxy-status's table, one row per stream: per type SYNCED / STALE / NOT SENT
 * (or "-" when not subscribed), plus the proven identity and the last NACK. With several
 * replicas (`--store`) a REPLICA column says which holds the stream (istioctl's ISTIOD column),
 * and proxies of a replica that did not answer get a row saying why. Pure.
 */
export function formatProxyStatus(connections: readonly ReportedConnection[], unreported: readonly UnreportedProxy[] = []): string {
  const withReplica = unreported.length > 0 || connections.some((c) => c.replica !== undefined);
  const header = ['NAME', ...(withReplica ? ['REPLICA'] : []), 'IDENTITY', 'STREAM', ...COLUMNS.map((c) => c.toUpperCase()), 'LAST NACK'];
  const rows = [...connections]
    .sort((a, b) => a.proxyId.localeCompare(b.proxyId) || a.connectionId.localeCompare(b.connectionId))
    .map((c) => {
      const byType = new Map(c.types.map((t) => [t.type, t]));
      const nack = c.types.filter((t) => t.lastNack).map((t) => `${t.type}: ${t.lastNack!.message}`).join('; ');
      return [
        c.proxyId,
        ...(withReplica ? [c.replica ?? '-'] : []),
        c.spiffeId,
        `${c.service.toUpperCase()}/${c.mode}`,
        ...COLUMNS.map((col) => {
          const t = byType.get(col);
          if (!t) return '-';
          return t.lastNack && t.status !== 'SYNCED' ? 'STALE (NACK)' : t.status;
        }),
        nack === '' ? '-' : truncate(nack, 80),
      ];
    });
  for (const u of [...unreported].sort((a, b) => a.proxyId.localeCompare(b.proxyId))) {
    rows.push([u.proxyId, u.replica, '?', '?', ...COLUMNS.map(() => '?'), truncate(u.why, 80)]);
  }
  if (rows.length === 0) return 'No proxies are connected.\n';
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}
