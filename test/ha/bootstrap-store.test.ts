import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { tempDir } from '../ca/helpers.js';
import { runMeshd } from '../e2e/helpers/serve-process.js';
import { startPostgres } from '../store/helpers/postgres.js';
import { fastStore, startReplica, storeKeyFile } from './helpers.js';

/** `meshd bootstrap --store`: the WorkloadEntry and the trust bundle from the store the replicas serve from. */
const pg = await startPostgres(t);

t.test('bootstrap --store reads the WorkloadEntry and every root from the store; several replica addresses make one cluster', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const replica = await startReplica(t, fastStore(url, keyFile, 'replica-1'));
  const examples = await readdir('examples/config');
  const documents = await Promise.all(examples.map(async (name) => ({ name, text: await readFile(join('examples/config', name), 'utf8') })));
  t.equal((await replica.store!.config.apply(documents, { expectedVersion: 0, appliedBy: 'test', at: Date.now() })).outcome, 'applied');
  await replica.ca.prepareNextRoot({ overlapMs: 3_600_000 });
  const store = ['--store', url, '--store-key-file', keyFile];
  const token = await replica.token('shop', 'shop-web');

  const dir = tempDir(t);
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, token, { mode: 0o600 });
  const bootstrap = await runMeshd(['bootstrap', '-n', 'shop', '-w', 'web-1', '--token-file', tokenFile, '--xds-address', '127.0.0.1:15012,127.0.0.2:15012', ...store]);
  t.equal(bootstrap.code, 0, bootstrap.stderr);
  const doc = parse(bootstrap.stdout) as { static_resources: { clusters: any[] } };
  const xds = doc.static_resources.clusters.find((c) => c.name === 'xds-grpc');
  t.same(xds.load_assignment.endpoints[0].lb_endpoints.map((e: any) => e.endpoint.address.socket_address.address), ['127.0.0.1', '127.0.0.2'], 'both replicas in the xds-grpc cluster');
  const trusted = xds.transport_socket.typed_config.common_tls_context.validation_context.trusted_ca.inline_string as string;
  const fingerprints = (trusted.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p).fingerprint256);
  t.same(fingerprints, replica.ca.trustBundle().rootsPem.map((p) => new X509Certificate(p).fingerprint256), 'the bootstrap trusts both roots of the store (mid-rotation)');

  const both = await runMeshd(['bootstrap', '-n', 'shop', '-w', 'web-1', '--config-dir', 'examples/config', ...store]);
  t.equal(both.code, 1);
  t.match(both.stderr, /--config-dir and --store are two sources of mesh config; give one/);
});

t.test('bootstrap --store never creates a CA', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const r = await runMeshd(['bootstrap', '-n', 'shop', '-w', 'web-1', '--store', url, '--store-key-file', keyFile]);
  t.equal(r.code, 1);
  t.match(r.stderr, /the store holds no CA yet; start `meshd serve --store` once to create it/);
  t.equal((await pg.sql('SELECT count(*)::int AS n FROM meshd_ca_root', [], url))[0]!.n, 0, 'no root was created');
});
