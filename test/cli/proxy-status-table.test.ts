import t from 'tap';
import { formatProxyStatus, type ReportedConnection } from '../../src/cli/proxy-status-table.js';

/** The proxy-status table alone (pure): one meshd, several replicas, and proxies of a replica that did not answer. */
const stream = (proxyId: string, replica?: string): ReportedConnection => ({
  connectionId: `${proxyId}-1`, proxyId, spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', peer: '127.0.0.1:5000', service: 'ads', mode: 'sotw',
  userAgent: 'envoy', connectedAt: '2026-12-06T00:00:00.000Z',
  types: [{ typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', type: 'cds', status: 'SYNCED', subscribed: { wildcard: true, names: 0 }, resources: 3 }],
  ...(replica !== undefined ? { replica } : {}),
});

t.test('one meshd: no REPLICA column', async (t) => {
  const out = formatProxyStatus([stream('web-1')]);
  t.match(out, /^NAME +IDENTITY +STREAM +CDS/);
  t.notMatch(out, /REPLICA/);
});

t.test('several replicas: a REPLICA column, and a row with the reason for each proxy of a replica that did not answer', async (t) => {
  const out = formatProxyStatus([stream('web-1', 'replica-a')], [{ proxyId: 'api-1', replica: 'replica-b', why: 'replica stopped heartbeating at 2026-12-06T00:00:00.000Z' }]);
  const lines = out.trimEnd().split('\n');
  t.match(lines[0], /^NAME +REPLICA +IDENTITY +STREAM +CDS +LDS +EDS +RDS +SDS +LAST NACK$/);
  t.match(lines[1], /^web-1 +replica-a +spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web +ADS\/sotw +SYNCED +- +- +- +- +-$/);
  t.match(lines[2], /^api-1 +replica-b +\? +\? +\? +\? +\? +\? +\? +replica stopped heartbeating at 2026-12-06T00:00:00\.000Z$/);
  t.equal(lines.length, 3);
});

t.test('nothing connected anywhere', async (t) => {
  t.equal(formatProxyStatus([], []), 'No proxies are connected.\n');
});
