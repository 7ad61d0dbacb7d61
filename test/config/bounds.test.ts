/**
 * What one config file may cost: size, tokens, nesting, aliases. A file over a bound is refused
 * with an error naming it and the bound, and the objects it held stay in force.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigDir, readConfigFiles, CONFIG_READ_LIMITS } from '../../src/config/load-config-dir.js';
import { buildSnapshot } from '../../src/config/build-snapshot.js';
import { YAML_LIMITS } from '../../src/config/yaml-limits.js';
import { COMPOSE_OPTIONS, parseYamlFile } from '../../src/config/yaml-source.js';
import { pa, snapshotOf, yaml } from './helpers.js';

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-bounds-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const lines = (s: { messages: readonly { level: string; source: { file: string; line: number }; message: string }[] }) =>
  s.messages.map((m) => [m.level, m.source.line, m.message]);

t.test('the bounds are the documented ones', async (t) => {
  t.same(CONFIG_READ_LIMITS, { maxFileBytes: 1_048_576, maxDirBytes: 16_777_216 });
  t.same(YAML_LIMITS, { maxTokens: 200_000, maxDocuments: 10_000, maxDepth: 100, maxAliases: 100 });
});

t.test('a file over the size bound is not read: an error names the file and the bound, its objects stay in force', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'shop.yaml');
  await writeFile(file, pa('shop', 'default', 'STRICT'));
  await writeFile(join(dir, 'pay.yaml'), pa('pay', 'default', 'STRICT'));
  const v1 = await loadConfigDir(dir);
  // Valid YAML that changes the mode, padded with a comment past the bound.
  const big = pa('shop', 'default', 'DISABLE') + `# ${'x'.repeat(CONFIG_READ_LIMITS.maxFileBytes)}\n`;
  await writeFile(file, big);
  await writeFile(join(dir, 'pay.yaml'), pa('pay', 'default', 'DISABLE'));
  const v2 = await loadConfigDir(dir, v1);
  t.equal(v2.peerAuthentications.find((p) => p.meta.namespace === 'shop')?.mode, 'STRICT', 'the refused file\'s object stays');
  t.equal(v2.peerAuthentications.find((p) => p.meta.namespace === 'pay')?.mode, 'DISABLE', 'other files apply');
  const size = Buffer.byteLength(big).toLocaleString('en-US');
  t.same(v2.messages.filter((m) => m.source.file === file).map((m) => [m.level, m.source.line, m.message]), [
    ['error', 1, `file is ${size} bytes (1 MiB); meshd reads config files of at most 1,048,576 bytes (1 MiB)`],
    ['warning', 1, `keeping the last good version of PeerAuthentication/shop/default: ${file} has a document that cannot be read`],
  ]);
});

t.test('a mesh.yaml over the bound keeps the mesh settings in force', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'mesh.yaml'), 'trustDomain: one.local\n');
  const v1 = await loadConfigDir(dir);
  await writeFile(join(dir, 'mesh.yaml'), `trustDomain: two.local\n# ${'x'.repeat(CONFIG_READ_LIMITS.maxFileBytes)}\n`);
  const v2 = await loadConfigDir(dir, v1);
  t.equal(v2.mesh.trustDomain, 'one.local');
  t.ok(v2.messages.some((m) => m.message === 'keeping the last good mesh config until this document is fixed'));
});

t.test('files past the dir\'s bound (by name) are not read; each says so and keeps its objects', async (t) => {
  const dir = await tempDir(t);
  const limits = { maxFileBytes: 1000, maxDirBytes: 1200 };
  for (const name of ['a.yaml', 'b.yaml', 'c.yaml']) await writeFile(join(dir, name), pa(name[0]!, 'default', 'STRICT'));
  const v1 = buildSnapshot(await readConfigFiles(dir, limits));
  t.same(v1.peerAuthentications.map((p) => p.meta.namespace), ['a', 'b', 'c'], 'all three fit');
  // a and b grow, each within 1,000 bytes: together they pass 1,200, so b and c are not read.
  await writeFile(join(dir, 'a.yaml'), pa('a', 'default', 'DISABLE') + `# ${'x'.repeat(500)}\n`);
  await writeFile(join(dir, 'b.yaml'), pa('b', 'default', 'DISABLE') + `# ${'x'.repeat(700)}\n`);
  await writeFile(join(dir, 'c.yaml'), pa('c', 'default', 'DISABLE'));
  const v2 = buildSnapshot(await readConfigFiles(dir, limits), v1);
  t.same(v2.peerAuthentications.map((p) => [p.meta.namespace, p.mode]), [['a', 'DISABLE'], ['b', 'STRICT'], ['c', 'STRICT']]);
  const refusal = 'not read: meshd reads at most 1,200 bytes (1.2 KiB) of config from a dir, and the files before this one (by name) leave too little of it';
  t.same(v2.messages.filter((m) => m.level === 'error').map((m) => [m.source.file, m.message]), [
    [join(dir, 'b.yaml'), refusal],
    [join(dir, 'c.yaml'), refusal],
  ]);
  // A file over the per-file bound says that, not the dir's.
  await writeFile(join(dir, 'a.yaml'), `# ${'x'.repeat(1200)}\n`);
  const v3 = buildSnapshot(await readConfigFiles(dir, limits), v2);
  t.equal(v3.messages.find((m) => m.source.file === join(dir, 'a.yaml'))?.message, 'file is 1,203 bytes (1.2 KiB); meshd reads config files of at most 1,000 bytes (1 KiB)');
});

t.test('a file with more tokens than the bound is refused at the line where it went past, its objects kept', async (t) => {
  const v1 = snapshotOf({ 'shop.yaml': pa('shop', 'default', 'STRICT') });
  // 3 tokens a line (key, ':', value): the bound is crossed on line 6 + 66,667 of the annotations.
  const annotations = Array.from({ length: 70_000 }, (_, i) => `    a${i}: v\n`).join('');
  const text = pa('shop', 'default', 'DISABLE').replace('metadata:\n', `metadata:\n  annotations:\n${annotations}`);
  const v2 = snapshotOf({ 'shop.yaml': text }, v1);
  t.equal(v2.peerAuthentications[0]?.mode, 'STRICT');
  const error = v2.messages.find((m) => m.level === 'error');
  t.equal(error?.message, 'more than 200,000 YAML tokens (keys, values, indicators); meshd reads at most 200,000 per file');
  t.ok(error && error.source.line > 66_000 && error.source.line < 67_000, `at the line where the count passed the bound (${error?.source.line})`);
});

t.test('dense YAML is counted by tokens, not bytes: 100,001 list items of "1," are refused', async (t) => {
  const text = `[${'1,'.repeat(100_001)}]`;
  t.ok(text.length < CONFIG_READ_LIMITS.maxFileBytes, 'well under the size bound');
  const doc = parseYamlFile('dense.yaml', text).documents;
  t.same(doc.map((d) => d.syntaxErrors.map((e) => e.message)), [['more than 200,000 YAML tokens (keys, values, indicators); meshd reads at most 200,000 per file']]);
});

t.test('more than 10,000 documents in a file are refused at the document past the bound', async (t) => {
  const docs = (n: number): string => 'a: 1\n---\n'.repeat(n - 1) + 'a: 1\n';
  t.equal(parseYamlFile('ok.yaml', docs(10_000)).documents.length, 10_000);
  t.same(parseYamlFile('many.yaml', docs(10_001)).documents.map((d) => d.syntaxErrors), [[{ line: 20_000, message: 'more than 10,000 documents; meshd reads at most 10,000 per file' }]]);
});

t.test('nesting deeper than 100 levels is refused; 100 levels are read', async (t) => {
  const nested = (n: number): string => `${'['.repeat(n)}x${']'.repeat(n)}\n`;
  t.same(parseYamlFile('ok.yaml', nested(100)).documents[0]?.syntaxErrors, []);
  t.same(parseYamlFile('deep.yaml', `a: 1\nb: ${nested(101)}`).documents[0]?.syntaxErrors, [
    { line: 2, message: 'collections nested more than 100 levels deep (aliases expanded); meshd reads at most 100' },
  ]);
  const block = Array.from({ length: 101 }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' x\n';
  t.same(parseYamlFile('block.yaml', block).documents[0]?.syntaxErrors.map((e) => e.message), ['collections nested more than 100 levels deep (aliases expanded); meshd reads at most 100']);
  const compact = `${'- '.repeat(101)}x\n`;
  t.same(parseYamlFile('compact.yaml', compact).documents[0]?.syntaxErrors.map((e) => e.message), ['collections nested more than 100 levels deep (aliases expanded); meshd reads at most 100']);
});

t.test('deep nesting parsed again and again does not take the process down', async (t) => {
  // 5,000 levels overflowed the yaml composer's stack; the second overflow in one process
  // aborted Node ("RegExpCompiler Allocation failed - process out of memory").
  const text = `${'['.repeat(5000)}${']'.repeat(5000)}`;
  for (let i = 0; i < 5; i++) {
    const s = snapshotOf({ 'deep.yaml': text });
    t.equal(s.messages[0]?.message, 'collections nested more than 100 levels deep (aliases expanded); meshd reads at most 100', `parse ${i + 1}`);
  }
});

t.test('aliases: more than 100 in a file, a cycle, or nesting past the bound once expanded are refused', async (t) => {
  const many = `a: &a x\nb: [${Array.from({ length: 101 }, () => '*a').join(', ')}]\n`;
  t.same(parseYamlFile('many.yaml', many).documents[0]?.syntaxErrors.map((e) => e.message), ['more than 100 aliases; meshd reads at most 100 per file']);
  t.same(parseYamlFile('cycle.yaml', 'kind: &k [a, *k]\n').documents[0]?.syntaxErrors, [{ line: 1, message: 'alias *k refers to a collection that contains it' }]);
  // Each level wraps the previous anchor in 60 more levels: 2 aliases reach 180.
  const wrap = (n: number, inner: string): string => `${'['.repeat(n)}${inner}${']'.repeat(n)}`;
  const expanded = `a: &a ${wrap(60, 'x')}\nb: &b ${wrap(60, '*a')}\nc: ${wrap(60, '*b')}\n`;
  t.same(parseYamlFile('expand.yaml', expanded).documents[0]?.syntaxErrors.map((e) => e.message), ['collections nested more than 100 levels deep (aliases expanded); meshd reads at most 100']);
  t.same(parseYamlFile('fine.yaml', `a: &a ${wrap(40, 'x')}\nb: ${wrap(40, '*a')}\n`).documents[0]?.syntaxErrors, [], '80 levels expanded are read');
});

t.test('duplicate keys: the yaml package\'s message at the repeated key, as before', async (t) => {
  const cases: [string, { line: number; message: string }[]][] = [
    ['a: 1\nb: 2\na: 3\n', [{ line: 3, message: 'Map keys must be unique' }]],
    ['x:\n  y: 1\n  y: 2\n', [{ line: 3, message: 'Map keys must be unique' }]],
    ['{a: 1, a: 2}', [{ line: 1, message: 'Map keys must be unique' }]],
    ['? a\n: 1\n? a\n: 2\n', [{ line: 3, message: 'Map keys must be unique' }]],
    ['1: x\n"1": y\n', []],
    ['~: 1\nnull: 2\n', [{ line: 2, message: 'Map keys must be unique' }]],
    ['a: 1\na: 2\nb: [\n', [{ line: 2, message: 'Map keys must be unique' }, { line: 4, message: 'Flow sequence in block collection must be sufficiently indented and end with a ]' }]],
    ['.nan: 1\n.NaN: 2\n', []],
    ['0: 1\n-0: 2\n0x0: 3\n', [{ line: 2, message: 'Map keys must be unique' }, { line: 3, message: 'Map keys must be unique' }]],
    ['a: 1\n!!str a: 2\n', [{ line: 2, message: 'Map keys must be unique' }]],
    ['[a: 1, a: 2]', []],
    ['true: 1\nTrue: 2\n', [{ line: 2, message: 'Map keys must be unique' }]],
  ];
  for (const [text, errors] of cases) t.same(parseYamlFile('f.yaml', text).documents[0]?.syntaxErrors, errors, JSON.stringify(text));
  const s = snapshotOf({ 'shop.yaml': yaml`
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata:
      name: default
      namespace: shop
      name: other
  ` });
  t.same(lines(s), [['error', 6, 'Map keys must be unique']]);
});

t.test('the duplicate-key check is linear: one check per key, the package\'s quadratic check is off', async (t) => {
  t.equal(COMPOSE_OPTIONS.uniqueKeys, false);
  const map = (n: number): string => Array.from({ length: n }, (_, i) => `k${i}: v`).join('\n') + '\n';
  const small = parseYamlFile('small.yaml', map(10_000));
  const large = parseYamlFile('large.yaml', `${map(20_000)}k7: again\n`);
  t.equal(small.keysChecked, 10_000);
  t.equal(large.keysChecked, 20_001, 'twice the keys, twice the work');
  t.same(large.documents[0]?.syntaxErrors, [{ line: 20_001, message: 'Map keys must be unique' }]);
});

t.test('a field error in every key of a large map is reported at each key\'s line', async (t) => {
  const n = 20_000;
  const annotations = Array.from({ length: n }, (_, i) => `    a${i}: ${i}\n`).join('');
  const s = snapshotOf({ 'shop.yaml': pa('shop', 'default', 'STRICT').replace('metadata:\n', `metadata:\n  annotations:\n${annotations}`) });
  const errors = s.messages.filter((m) => m.level === 'error');
  t.equal(errors.length, n);
  t.same([errors[0]!.source.line, errors[n - 1]!.source.line], [5, 4 + n]);
  t.equal(errors[n - 1]!.message, `metadata.annotations.a${n - 1} must be a string, got number ${n - 1} (quote it)`);
});
