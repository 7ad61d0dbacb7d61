import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { tempDir } from '../ca/helpers.js';
import { bearer, type TestMeshd } from '../e2e/helpers/meshd.js';
import { startServeProcess, type ServeProcess } from '../e2e/helpers/serve-process.js';
import { startPostgres, type Tap } from '../store/helpers/postgres.js';
import { metric, waitFor } from '../store/helpers/store.js';
import type { SotwResponse } from '../xds/helpers/xds-client.js';
import { fastStore, startReplica, storeKeyFile } from './helpers.js';

/**
 * What happens when a part goes away: the leader's process killed (another replica leads), and
 * PostgreSQL stopped (replicas keep serving from what they read, report the store down, refuse
 * writes they could not persist, and catch up when it is back, with no operator action).
 */
const pg = await startPostgres(t);

async function gauge(p: ServeProcess, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${p.ports.monitoring}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

function serve(t: Tap, args: string[]): Promise<ServeProcess> {
  return startServeProcess(args).then((p) => {
    t.teardown(() => { if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL'); });
    return p;
  });
}

t.test('SIGKILL of the leader\'s process: the other replica takes the lead within seconds', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const args = (): string[] => ['--store', url, '--store-key-file', keyFile, '--data-dir', tempDir(t), '--log-level', 'info', '--shutdown-grace', '1s', '--ca-workers', '0'];
  const replicas = await Promise.all([1, 2].map(() => serve(t, args())));
  const leader = await waitFor('one leader', async () => {
    const leading = [];
    for (const r of replicas) if ((await gauge(r, 'meshd_store_leader')) === 1) leading.push(r);
    return leading.length === 1 ? leading[0] : undefined;
  }, 20_000);
  const survivor = replicas.find((r) => r !== leader)!;
  t.equal(await gauge(survivor, 'meshd_store_up'), 1, 'the survivor is connected to the store');

  const killedAt = Date.now();
  leader.child.kill('SIGKILL');
  await waitFor('the survivor to lead', async () => ((await gauge(survivor, 'meshd_store_leader')) === 1 ? true : undefined), 15_000);
  t.comment(`the survivor led ${Date.now() - killedAt} ms after the SIGKILL (session poll 1 s)`);
  t.pass('the survivor leads');
  // The gauge and the log line are written together, but the line reaches us through a pipe.
  await waitFor('the survivor to log that it leads', async () => (survivor.logs.some((l) => l.msg === 'this replica leads: it rotates roots when due') ? true : undefined), 15_000);
  t.pass('and says so in its log');
  t.equal((await pg.sql('SELECT count(*)::int AS n FROM meshd_ca_root', [], url))[0]!.n, 1, 'still one root');
});

function secretNamed(r: SotwResponse, name: string): Record<string, any> {
  const found = r.resources.find((x) => x.name === name);
  if (!found) throw new Error(`no secret ${name} in response (${r.resources.map((x) => x.name).join(', ')})`);
  return found.decoded as Record<string, any>;
}

async function fetchSvid(meshd: TestMeshd, ns: string, sa: string, nodeId: string): Promise<X509Certificate> {
  const stream = meshd.tlsClient().sotw('sds', { node: { id: nodeId }, metadata: bearer(await meshd.token(ns, sa)) });
  stream.subscribe(TypeUrl.Secret, ['default', 'ROOTCA']);
  const response = await stream.next(15_000);
  stream.ack(response);
  const def = secretNamed(response, 'default');
  return new X509Certificate(Buffer.from(def.tls_certificate.certificate_chain.inline_bytes as Buffer).toString('utf8'));
}

t.test('PostgreSQL stopped: replicas keep issuing SVIDs and serving xDS, meshd_store_up is 0, a config change is refused; all recovers when it is back', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const replicas = await Promise.all([1, 2].map((i) => startReplica(t, fastStore(url, keyFile, `replica-${i}`))));
  const names = await readdir('examples/config');
  const documents = await Promise.all(names.map(async (name) => ({ name, text: await readFile(join('examples/config', name), 'utf8') })));
  t.equal((await replicas[0]!.store!.config.apply(documents, { expectedVersion: 0, appliedBy: 'test', at: Date.now() })).outcome, 'applied');
  for (const r of replicas) {
    await waitFor('the config to reach every replica', async () => {
      const body = (await (await fetch(`http://127.0.0.1:${r.ports.monitoring}/debug/config`)).json()) as { version: number };
      return body.version === 1 ? true : undefined;
    });
  }
  const before = await fetchSvid(replicas[0]!, 'shop', 'web', 'before-outage');
  t.equal(await metric(replicas[0]!.registry, 'meshd_store_up'), 1);

  await pg.stop();
  t.teardown(async () => { await pg.start().catch(() => undefined); });
  for (const [i, r] of replicas.entries()) {
    await waitFor(`replica ${i + 1} to report the store down`, async () => ((await metric(r.registry, 'meshd_store_up')) === 0 ? true : undefined));
  }
  t.pass('meshd_store_up is 0 on both replicas');

  for (const [i, r] of replicas.entries()) {
    const svid = await fetchSvid(r, 'shop', `during-${i}`, `during-outage-${i}`);
    t.ok(svid.checkIssued(new X509Certificate(r.ca.trustBundle().rootsPem[0]!)), `replica ${i + 1} issues a new SVID from the root it holds`);
    t.equal(svid.issuer, before.issuer, 'signed by the same CA as before the outage');
  }
  const lds = replicas[1]!.tlsClient().sotw('ads', {
    node: { id: 'sidecar~127.0.0.21~web-1.shop~shop.svc.cluster.local', metadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'web-1' } },
    metadata: bearer(await replicas[1]!.token('shop', 'shop-web')),
  });
  lds.subscribe(TypeUrl.Listener, []);
  const listeners = await lds.next(15_000);
  t.ok(listeners.resources.some((r) => r.name === '127.0.0.21_8080'), 'a sidecar connecting during the outage gets its listeners from the config read before it');

  await t.rejects(
    replicas[0]!.store!.config.apply([{ name: 'mesh.yaml', text: 'trustDomain: cluster.local\n' }], { expectedVersion: 0, appliedBy: 'test', at: Date.now() }),
    /the store is unreachable: .*; nothing was changed/,
    'a config change during the outage is refused, saying nothing was changed',
  );
  await t.rejects(replicas[0]!.ca.prepareNextRoot({ overlapMs: 60_000 }), /the store is unreachable/, 'so is a root rotation');
  t.equal(replicas[0]!.ca.trustBundle().rootsPem.length, 1, 'and the CA kept its state');

  await pg.start();
  for (const [i, r] of replicas.entries()) {
    await waitFor(`replica ${i + 1} to reconnect`, async () => ((await metric(r.registry, 'meshd_store_up')) === 1 ? true : undefined), 20_000);
  }
  t.pass('meshd_store_up is back to 1 on both, with no operator action');
  const prepared = await replicas[0]!.ca.prepareNextRoot({ overlapMs: 60_000 });
  t.equal(prepared.id, 'root-2', 'a rotation after the outage lands');
  await waitFor('replica 2 to follow it', () => (replicas[1]!.ca.trustBundle().rootsPem.length === 2 ? true : undefined));
  t.pass('the other replica follows it through the change feed');
});
