import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the tests find the repository, and how they start a TypeScript fixture as a process.
 *
 * `npm test` compiles src/ and test/ to dist-test/ (tsconfig.test.json) and tap runs the
 * compiled files, so a test module may be dist-test/test/x/y.test.js or, run by hand under tsx,
 * test/x/y.test.ts. Paths to checked-in files (examples, fixtures, envoy/) are taken from the
 * repository root, found here; paths to other test modules keep the running module's extension.
 */
function findRepo(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'meshd') return dir;
    if (dirname(dir) === dir) throw new Error(`no meshd package.json above ${start}`);
  }
}

export const REPO = findRepo(import.meta.dirname);

/** A checked-in file or directory, by its path from the repository root. */
export function repoPath(...parts: string[]): string {
  return join(REPO, ...parts);
}

/** True when this module runs from TypeScript sources (tsx), false when compiled to dist-test/. */
export const FROM_SOURCES = extname(fileURLToPath(import.meta.url)) === '.ts';

/**
 * A test module beside `moduleUrl` (pass `import.meta.url`), named without extension:
 * `module(import.meta.url, 'fixtures/hold-ca-lock')` is its .ts or compiled .js path.
 */
export function testModule(moduleUrl: string, relative: string): string {
  return join(dirname(fileURLToPath(moduleUrl)), `${relative}${extname(fileURLToPath(moduleUrl))}`);
}

/** [node, args] that run a test module as its own process: compiled as is, from sources through tsx. */
export function nodeScript(modulePath: string, args: readonly string[] = []): [string, string[]] {
  return [process.execPath, [...(modulePath.endsWith('.ts') ? ['--import', 'tsx'] : []), modulePath, ...args]];
}
