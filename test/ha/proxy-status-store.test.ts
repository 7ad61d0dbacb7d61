import t from 'tap';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { bearer } from '../e2e/helpers/meshd.js';
import { runMeshd } from '../e2e/helpers/serve-process.js';
import { startPostgres } from '../store/helpers/postgres.js';
import { waitFor } from '../store/helpers/store.js';
import { fastStore, startReplica, storeKeyFile } from './helpers.js';

/**
 * `meshd proxy-status --store` (the real CLI) lists the proxies of every replica: each replica
 * writes which proxies it holds to the store, and the CLI asks each for their sync state. A
 * proxy that leaves disappears from the list; a replica that stops takes its proxies with it.
 */
const pg = await startPostgres(t);

const NODES = {
  web: { id: 'sidecar~127.0.0.21~web-1.shop~shop.svc.cluster.local', metadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'web-1' } },
  api: { id: 'sidecar~127.0.0.31~api-1.payments~payments.svc.cluster.local', metadata: { NAMESPACE: 'payments', WORKLOAD_NAME: 'api-1' } },
};

interface Listed { connections: Array<{ proxyId: string; replica: string; types: Array<{ type: string; status: string }> }>; unreported: unknown[] }

t.test('proxy-status --store shows each replica\'s proxies with their sync state, and follows them leaving', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const dir = await mkdtemp(join(tmpdir(), 'meshd-proxy-status-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp('examples/config', dir, { recursive: true });
  const store = ['--store', url, '--store-key-file', keyFile];
  const applied = await runMeshd(['config', 'apply', '-f', dir, ...store]);
  t.equal(applied.code, 0, applied.stderr);

  const a = await startReplica(t, fastStore(url, keyFile, 'replica-a'));
  const b = await startReplica(t, fastStore(url, keyFile, 'replica-b'));
  const web = a.tlsClient().sotw('ads', { node: NODES.web, metadata: bearer(await a.token('shop', 'shop-web')) });
  const api = b.tlsClient().sotw('ads', { node: NODES.api, metadata: bearer(await b.token('payments', 'payments-api')) });
  for (const s of [web, api]) {
    s.subscribe(TypeUrl.Cluster, []);
    s.ack(await s.next(15_000));
  }

  const list = async (): Promise<Listed> => {
    const r = await runMeshd(['proxy-status', ...store, '-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as Listed;
  };
  const both = await waitFor('both proxies in proxy-status --store', async () => {
    const l = await list();
    return l.connections.length === 2 ? l : undefined;
  }, 20_000);
  const byProxy = new Map(both.connections.map((c) => [c.proxyId, c]));
  t.equal(byProxy.get(NODES.web.id)?.replica, 'replica-a', 'web-1 is on replica a');
  t.equal(byProxy.get(NODES.api.id)?.replica, 'replica-b', 'api-1 is on replica b');
  t.same(byProxy.get(NODES.web.id)?.types.find((x) => x.type === 'cds')?.status, 'SYNCED', 'with its sync state from replica a');
  t.same(both.unreported, []);

  const table = await runMeshd(['proxy-status', ...store]);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^NAME +REPLICA +IDENTITY +STREAM +CDS +LDS +EDS +RDS +SDS +LAST NACK\n/, 'a REPLICA column, as istioctl\'s ISTIOD');
  t.match(table.stdout, new RegExp(`${NODES.api.id.replaceAll('.', '\\.')} +replica-b +spiffe://cluster\\.local/ns/payments/sa/payments-api +ADS/sotw +SYNCED`));

  web.end();
  await waitFor('web-1 gone from the list', async () => {
    const l = await list();
    return l.connections.every((c) => c.proxyId !== NODES.web.id) ? true : undefined;
  }, 20_000);
  t.pass('a proxy that closed its stream leaves the list');

  await b.close();
  const afterStop = await waitFor('replica b and its proxy gone', async () => {
    const l = await list();
    return l.connections.length === 0 ? l : undefined;
  }, 20_000);
  t.same(afterStop.unreported, [], 'a replica that stops removes itself and its proxies');
});
