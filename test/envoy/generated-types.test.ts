import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { generateEnvoyTypes } from '../../scripts/gen-envoy-types.js';
import { repoPath } from '../helpers/repo.js';

/**
 * src/envoy/generated is committed, so `tsc` and editors work on a fresh clone; this test keeps
 * it honest: regenerated from the installed @grpc/grpc-js-xds protos, it must come out the same.
 */
const COMMITTED = repoPath('src/envoy/generated');

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

t.test('src/envoy/generated is what `npm run gen:envoy-types` writes today', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-envoy-types-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  generateEnvoyTypes(dir);
  const fresh = files(dir);
  const committed = files(COMMITTED);
  const hint = 'run `npm run gen:envoy-types` and commit src/envoy/generated';
  t.same([...committed.keys()].filter((f) => !fresh.has(f)).sort(), [], `no stale files (${hint})`);
  t.same([...fresh.keys()].filter((f) => !committed.has(f)).sort(), [], `no missing files (${hint})`);
  const differing = [...fresh].filter(([f, text]) => committed.has(f) && committed.get(f) !== text).map(([f]) => f).sort();
  t.same(differing, [], `every file as generated (${hint})`);
  t.ok(fresh.size > 300, `the whole closure of Envoy's protos is generated (${fresh.size} files)`);
});
