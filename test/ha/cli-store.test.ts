import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMeshd } from '../e2e/helpers/serve-process.js';
import { startPostgres } from '../store/helpers/postgres.js';
import { waitFor } from '../store/helpers/store.js';
import { fastStore, startReplica, storeKeyFile } from './helpers.js';

/**
 * `meshd token` and `meshd ca` with --store: the same CA and token key as
 * the replicas serving from that store, and changes made from the CLI reach them.
 */
const pg = await startPostgres(t);

t.test('token and ca commands work on the store the replicas serve from', async (t) => {
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const replica = await startReplica(t, fastStore(url, keyFile, 'replica-1'));
  const examples = await readdir('examples/config');
  const documents = await Promise.all(examples.map(async (name) => ({ name, text: await readFile(join('examples/config', name), 'utf8') })));
  const applied = await replica.store!.config.apply(documents, { expectedVersion: 0, appliedBy: 'test', at: Date.now() });
  t.equal(applied.outcome, 'applied');
  const store = ['--store', url, '--store-key-file', keyFile];

  const issued = await runMeshd(['token', 'issue', '-n', 'shop', '-s', 'shop-web', ...store]);
  t.equal(issued.code, 0, issued.stderr);
  const token = issued.stdout.trim();
  t.match(await replica.tokens.verify(token), { namespace: 'shop', serviceAccount: 'shop-web' }, 'a token from `meshd token issue --store` is accepted by the replica');

  const root = await runMeshd(['ca', 'root', ...store]);
  t.equal(root.code, 0, root.stderr);
  t.equal(root.stdout.trim(), replica.ca.trustBundle().rootsPem.join('').trim(), '`meshd ca root --store` prints the bundle the replica serves');

  const rotated = await runMeshd(['ca', 'rotate-root', '--overlap', '1h', ...store]);
  t.equal(rotated.code, 0, rotated.stderr);
  t.match(rotated.stdout, /^prepared root-2 \(ec-p256, SHA-256 [0-9a-f]{64}\)/);
  await waitFor('the replica to trust root-2', () => (replica.ca.trustBundle().rootsPem.length === 2 ? true : undefined));
  t.same(replica.ca.status().roots.map((r) => [r.id, r.state]), [['root-1', 'active'], ['root-2', 'prepared']], 'the replica took the rotation from the store');

  const status = await runMeshd(['ca', 'status', ...store]);
  t.match(status.stdout, /^built-in CA for cluster\.local in postgres:\/\/meshd@127\.0\.0\.1:\d+\/test_\d+_\d+; spiffe_sequence 2\n  root-1 +active .*\n  root-2 +prepared /);

});
