import t from 'tap';
import { runMeshd } from '../e2e/helpers/serve-process.js';
import { startPostgres } from '../store/helpers/postgres.js';

/** The mesh config commands refuse to run without a store, or with a store but no key file. */
const pg = await startPostgres(t);

t.test('config commands need --store and its key file', async (t) => {
  const url = await pg.createDatabase();
  const noStore = await runMeshd(['config', 'get']);
  t.equal(noStore.code, 1);
  t.match(noStore.stderr, /required option '--store <url>' not specified/);
  const empty = await runMeshd(['config', 'get'], { MESHD_STORE: '' });
  t.match(empty.stderr, /--store \(or MESHD_STORE\) is empty/);
  const noKey = await runMeshd(['config', 'get', '--store', url]);
  t.equal(noKey.code, 1);
  t.match(noKey.stderr, /--store needs --store-key-file/);
});
