import t from 'tap';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { bearer } from '../e2e/helpers/meshd.js';
import { runMeshd } from '../e2e/helpers/serve-process.js';
import type { SotwResponse } from '../xds/helpers/xds-client.js';
import { startPostgres } from '../store/helpers/postgres.js';
import { fastStore, startReplica, storeKeyFile } from './helpers.js';

/**
 * `meshd config apply|get|diff` against a real PostgreSQL, and two replicas serving what it
 * applied: the same listeners (bytes and versions) on both, a change pushed by both, a bad
 * config refused whole.
 */
const pg = await startPostgres(t);

function inboundTransports(r: SotwResponse, port: number): string[] {
  const listener = r.resources.find((x) => x.name === `127.0.0.21_${port}`);
  if (!listener) throw new Error(`no inbound listener for ${port} in ${r.resources.map((x) => x.name).join(', ')}`);
  const chains = (listener.decoded as { filter_chains: Array<{ filter_chain_match?: { transport_protocol?: string } }> }).filter_chains;
  return chains.map((c) => c.filter_chain_match?.transport_protocol ?? '(any)').sort();
}

const bytesOf = (r: SotwResponse): string[] => r.resources.map((x) => `${x.name}=${JSON.stringify(x.decoded)}`).sort();

t.test('config apply reaches the proxies of every replica alike; diff shows a change before it lands; a bad config applies nothing', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const dir = await mkdtemp(join(tmpdir(), 'meshd-apply-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp('examples/config', dir, { recursive: true });
  const store = ['--store', url, '--store-key-file', keyFile];

  const applied = await runMeshd(['config', 'apply', '-f', dir, ...store]);
  t.equal(applied.code, 0, applied.stderr);
  t.match(applied.stdout, /applied as version 1 \(5 documents\)/);

  const replicas = await Promise.all([1, 2].map((i) => startReplica(t, fastStore(url, keyFile, `replica-${i}`))));
  const token = await replicas[0]!.token('shop', 'shop-web');
  const streams = replicas.map((r) => {
    const ads = r.tlsClient().sotw('ads', { node: { id: 'sidecar~127.0.0.21~web-1.shop~shop.svc.cluster.local', metadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'web-1' } }, metadata: bearer(token) });
    ads.subscribe(TypeUrl.Listener, []);
    return ads;
  });
  const first = await Promise.all(streams.map((s) => s.next(15_000)));
  for (const [i, r] of first.entries()) {
    t.same(inboundTransports(r, 8080), ['raw_buffer', 'tls'], `replica ${i + 1}: PERMISSIVE from the store`);
    streams[i]!.ack(r);
  }
  t.equal(first[1]!.version_info, first[0]!.version_info, 'both replicas send the same listener version');
  t.same(bytesOf(first[1]!), bytesOf(first[0]!), 'and the same listeners');

  const shop = join(dir, 'shop.yaml');
  await writeFile(shop, (await readFile(shop, 'utf8')).replace(/mode: PERMISSIVE/, 'mode: STRICT'));
  const diff = await runMeshd(['config', 'diff', '-f', dir, ...store]);
  t.equal(diff.code, 1, 'diff exits 1 when the dir differs from the store');
  t.match(diff.stdout, /--- store\/shop\.yaml \(version 1\)\n\+\+\+ .*\/shop\.yaml\n@@ -\d+,1 \+\d+,1 @@\n-    mode: PERMISSIVE\n\+    mode: STRICT\n/);
  t.match(diff.stdout, /1 document differs; affects namespaces shop/);

  const second = await runMeshd(['config', 'apply', '-f', dir, ...store]);
  t.equal(second.code, 0, second.stderr);
  t.match(second.stdout, /applied as version 2/);
  const pushed = await Promise.all(streams.map((s) => s.next(10_000)));
  for (const [i, r] of pushed.entries()) {
    t.same(inboundTransports(r, 8080), ['tls'], `replica ${i + 1} pushed STRICT`);
    streams[i]!.ack(r);
  }
  t.equal(pushed[1]!.version_info, pushed[0]!.version_info, 'the same new version on both');
  t.same(bytesOf(pushed[1]!), bytesOf(pushed[0]!));

  const again = await runMeshd(['config', 'apply', '-f', dir, ...store]);
  t.match(again.stdout, /unchanged; version 2 \(5 documents\) stays in force/);

  await writeFile(shop, (await readFile(shop, 'utf8')).replace(/mode: STRICT/, 'mode: STRIKT'));
  const bad = await runMeshd(['config', 'apply', '-f', dir, ...store]);
  t.equal(bad.code, 1, 'a bad config fails');
  t.match(bad.stdout, new RegExp(`Error: ${dir}/shop\\.yaml:\\d+: .*STRIKT`), 'with the validate message, file:line');
  t.match(bad.stdout, /1 error, 0 warnings in 5 files; nothing was applied/);
  const versions = await pg.sql<{ version: string }>('SELECT max(version) AS version FROM meshd_config_version', [], url);
  t.equal(Number(versions[0]!.version), 2, 'the store still holds version 2');
  for (const s of streams) await s.expectSilence(500);

  const got = await runMeshd(['config', 'get', ...store]);
  t.equal(got.code, 0);
  t.match(got.stderr, /^version 2, applied .* by .*, 5 documents/);
  t.match(got.stdout, /# shop\.yaml\n[\s\S]*mode: STRICT/);
  t.notMatch(got.stdout, /STRIKT/);
});
