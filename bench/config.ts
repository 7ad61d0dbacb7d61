/**
 * npm run bench:config
 *
 * What a config file costs to parse at meshd's bounds (1 MiB, 200,000 tokens, 10,000 documents, 100 levels):
 * 1. parse time and heap of the largest legal files of several shapes, against the `yaml`
 *    package's lexer alone on the same text (the floor: every byte is looked at once);
 * 2. the duplicate-key check: time per key as one map grows, meshd's Set walk against the
 *    package's own check (uniqueKeys: true), which is quadratic;
 * 3. the inline bound: the slowest 8 KiB (what a reload may parse on the event loop).
 */
import { cpus, loadavg } from 'node:os';
import { Lexer, parseAllDocuments } from 'yaml';
import { parseConfigFile } from '../src/config/build-snapshot.js';
import { INLINE_PARSE_MAX_BYTES } from '../src/config/off-thread-parse.js';

function istioObjects(bytes: number): string {
  let out = '';
  for (let i = 0; out.length < bytes; i++) {
    out += `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: w-${i}\n  namespace: shop\n  labels:\n    app: web\n    version: v1\nspec:\n  address: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}\n  serviceAccount: web\n  ports:\n    http: 8080\n---\n`;
  }
  return out.slice(0, out.lastIndexOf('---\n', bytes));
}
const keys = (n: number): string => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  annotations:\n${Array.from({ length: n }, (_, i) => `    k${i}: v\n`).join('')}`;
const dense = (tokens: number): string => `[${'1,'.repeat(Math.floor((tokens - 2) / 2))}]`;
const nested = (depth: number, width: number): string => Array.from({ length: width }, () => `- ${'['.repeat(depth - 1)}x${']'.repeat(depth - 1)}`).join('\n');

function time(fn: () => void, runs = 3): number {
  fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  return Math.min(...times);
}

const fmt = (ms: number): string => `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;

console.log(`machine: ${cpus().length} CPUs (${cpus()[0]?.model}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (other processes share these cores)`);
console.log('\n1. the largest legal files (parse + validate, as one reload of the file does); floor: the lexer alone');
for (const [name, text] of [
  ['1 MiB of WorkloadEntries', istioObjects(1048576)],
  ['10,000 documents', 'a: 1\n---\n'.repeat(9_999) + 'a: 1\n'],
  ['66,000 keys in one map (~198,000 tokens)', keys(66_000)],
  ['199,998 tokens of [1,1,1,...]', dense(199_998)],
  ['100 levels of nesting, x1,000', nested(100, 1000)],
] as const) {
  const file = { path: 'bench.yaml', text };
  const r = parseConfigFile(file);
  const refused = r.messages.find((m) => m.level === 'error' && m.message.includes('meshd reads at most'));
  if (refused) throw new Error(`${name} is refused: ${refused.message}`);
  const parse = time(() => parseConfigFile(file), 2);
  const lex = time(() => { for (const _ of new Lexer().lex(text)); }, 2);
  console.log(`  ${name.padEnd(44)} ${(text.length / 1024).toFixed(0).padStart(5)} KiB: ${fmt(parse).padStart(8)} (lexer alone ${fmt(lex)})`);
}

console.log('\n2. duplicate-key check, one map of N keys: time per key');
for (const n of [10_000, 20_000, 40_000]) {
  const text = keys(n);
  const meshd = time(() => parseConfigFile({ path: 'k.yaml', text }), 1);
  const pkg = n <= 20_000 ? time(() => parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true, strict: true }), 1) : undefined;
  console.log(`  N=${String(n).padEnd(6)} meshd (Set walk, whole parse): ${fmt(meshd).padStart(8)} = ${(1000 * meshd / n).toFixed(1)} µs/key   the yaml package's uniqueKeys check (parse only): ${pkg === undefined ? '(skipped: ~4x the previous)' : `${fmt(pkg)} = ${(1000 * pkg / n).toFixed(1)} µs/key`}`);
}

console.log(`\n3. what a reload may parse on the event loop: ${INLINE_PARSE_MAX_BYTES / 1024} KiB (more goes to a worker thread)`);
for (const [name, text] of [
  ['Istio objects', istioObjects(INLINE_PARSE_MAX_BYTES)],
  ['dense [1,1,1,...]', dense(INLINE_PARSE_MAX_BYTES)],
  ['one map of short keys', keys(Math.floor((INLINE_PARSE_MAX_BYTES - 60) / 12))],
] as const) {
  console.log(`  ${name.padEnd(24)} ${(text.length / 1024).toFixed(1)} KiB: ${fmt(time(() => parseConfigFile({ path: 'x.yaml', text }), 5))}`);
}
