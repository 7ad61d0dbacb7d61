import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './repo.js';

/**
 * How tests run the meshd CLI as its own process: `node dist/cli/main.js`, the built program
 * `npm start` runs. `npm test` builds dist before the suite. Going through tsx instead would
 * compile the CLI's modules again in every child, about a second each (several on a busy
 * machine), and the CLI tests start well over a hundred children.
 *
 * A dist older than src would test yesterday's code, so the first use checks that no file under
 * src/ is newer than the build and otherwise stops with the command that fixes it.
 */
export { REPO };
export const MESHD_MAIN = join(REPO, 'dist/cli/main.js');

let checked = false;

function newestSource(dir: string): { path: string; mtimeMs: number } {
  let newest = { path: dir, mtimeMs: 0 };
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const candidate = entry.isDirectory() ? newestSource(path) : { path, mtimeMs: statSync(path).mtimeMs };
    if (candidate.mtimeMs > newest.mtimeMs) newest = candidate;
  }
  return newest;
}

function assertBuilt(): void {
  if (checked) return;
  let built: number;
  try {
    built = statSync(MESHD_MAIN).mtimeMs;
  } catch {
    throw new Error(`${MESHD_MAIN} is missing: run \`npm run build\` (npm test does it for you)`);
  }
  const newest = newestSource(join(REPO, 'src'));
  if (newest.mtimeMs > built) {
    throw new Error(`dist/ is older than ${newest.path}: run \`npm run build\` (npm test does it for you)`);
  }
  checked = true;
}

/** [node, [dist/cli/main.js, ...args]]: spread into spawn / execFile. */
export function meshdCommand(args: readonly string[] = []): [string, string[]] {
  assertBuilt();
  return [process.execPath, [MESHD_MAIN, ...args]];
}
