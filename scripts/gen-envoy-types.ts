/**
 * Generates TypeScript types for Envoy's messages into src/envoy/generated/ (`npm run
 * gen:envoy-types`), from the .proto files meshd loads at run time (ENVOY_PROTO_FILES, read from
 * the installed @grpc/grpc-js-xds package's deps/ folder), with @grpc/proto-loader's
 * proto-loader-gen-types, as grpc-js-xds generates its own (its package.json "generate-types").
 *
 * Options match how meshd builds messages for protobufjs's fromObject: Envoy's snake_case field
 * names (--keepCase), 64-bit integers and enums as strings, `.js` import suffixes (NodeNext ESM).
 * Only the input ("permissive") types are used; proto-loader writes the __Output types too.
 *
 * One file is not proto-loader's: google/protobuf/Any.ts re-exports src/envoy/any.ts, where an
 * Any is typed by the message its type URL names, so a typed_config's fields are checked too.
 *
 * Usage: tsx scripts/gen-envoy-types.ts [outDir]   (default src/envoy/generated; relative to the repo)
 * test/envoy/generated-types.test.ts regenerates into a temporary folder and compares.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENVOY_PROTO_FILES, XDS_DEPS_DIR } from '../src/envoy/protos.js';

const require = createRequire(import.meta.url);
const REPO = packageRoot(dirname(fileURLToPath(import.meta.url)));

/** The nearest directory up with a package.json: the repo from scripts/, and from the tests' compiled dist-test/scripts/. */
function packageRoot(from: string): string {
  for (let dir = from; dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  return resolve(from, '..');
}
const GEN_TYPES = join(dirname(require.resolve('@grpc/proto-loader/package.json')), 'build', 'bin', 'proto-loader-gen-types.js');

/** src/envoy/any.ts as src/envoy/generated/google/protobuf/Any.ts imports it (the same from any outDir, so outputs compare). */
const ANY_MODULE = '../../../any.js';

export function generateEnvoyTypes(outDir: string): void {
  const out = resolve(REPO, outDir);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  // Include paths relative to the repository: proto-loader writes them into each file's header.
  const includes = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => relative(REPO, join(XDS_DEPS_DIR, d)));
  execFileSync(process.execPath, [
    GEN_TYPES, '--keepCase', '--longs', 'String', '--enums', 'String', '--importFileExtension', '.js',
    '--includeDirs', ...includes, '--outDir', out, ...ENVOY_PROTO_FILES,
  ], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  writeFileSync(join(out, 'google', 'protobuf', 'Any.ts'), [
    '// Written by scripts/gen-envoy-types.ts in place of proto-loader\'s Any: an Any is typed by the',
    '// message its type URL names (src/envoy/any.ts).',
    '',
    `export type { PackedAny as Any } from '${ANY_MODULE}';`,
    '',
    'export interface Any__Output {',
    '  \'type_url\': (string);',
    '  \'value\': (Buffer);',
    '}',
    '',
  ].join('\n'));
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  generateEnvoyTypes(process.argv[2] ?? join('src', 'envoy', 'generated'));
}
