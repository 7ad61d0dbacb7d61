import * as fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { parseConfigFile, UNEXPECTED_PARSE_FAILURE } from '../../src/config/build-snapshot.js';
import { DUPLICATE_KEY_MESSAGE, parseYamlFile } from '../../src/config/yaml-source.js';
import { ContractViolation, text, utf8, type FuzzTarget } from '../target.js';

const SNIPPETS = ['a: 1\nb: 2\na: 3\n', '{a: 1, a: 2}', '? a\n: 1\n? a\n: 2\n', 'x: &a [1, *a]\n', 'k: &k {x: *k}\n', '%YAML 1.1\n---\n<<: {a: 1}\n<<: {b: 2}\n', '- - - [[{a: b}]]\n', 'a: |\n  text\n  more\nb: >-\n  folded\n', '--- 1\n...\n--- 2\n', 'a: !!str 1\n!!int 2: b\n'];
const PIECES = ['[', ']', '{', '}', ',', ':', '- ', '? ', '&a ', '*a', '\n', '  ', 'k: ', '---\n', '"', "'", '#', '|\n'];

/** The config loader on untrusted YAML: meshd reads whatever lands in its config dir. */
export const yaml: FuzzTarget = {
  name: 'yaml',
  about: 'parseConfigFile: messages, never a failure of meshd\'s own reading; duplicate keys as the yaml package reports them',
  seeds: () => [
    ...['examples/config', 'demo/config'].flatMap((dir) => readdirSync(dir).map((f) => readFileSync(`${dir}/${f}`))),
    ...SNIPPETS.map(utf8),
  ],
  generators: [fc.tuple(fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 3000 })).map(([p, n]) => utf8(p.join('').repeat(n)))],
  check(input) {
    const source = text(input);
    const r = parseConfigFile({ path: 'fuzz.yaml', text: source });
    const failure = r.messages.find((m) => m.message.startsWith(UNEXPECTED_PARSE_FAILURE));
    if (failure) throw new ContractViolation(failure.message);
    // Differential, on small inputs read whole: meshd's linear duplicate-key check finds as many
    // repeated keys in each document as the package's own. Lines are not compared: the package
    // reports some a line or two away from the key (where the previous entry's tokens ended,
    // after a nested value ending in an empty one, around explicit `?` keys), meshd at the key
    // itself; the common layouts give the same line (test/config/bounds.test.ts).
    if (source.length <= 2048) {
      const docs = parseYamlFile('fuzz.yaml', source).documents;
      const refused = docs.some((d) => d.syntaxErrors.some((e) => e.message.includes('meshd reads at most') || e.message.includes('refers to a collection that contains it')));
      if (!refused) {
        const ours = docs.map((d) => d.syntaxErrors.filter((e) => e.message === DUPLICATE_KEY_MESSAGE).length);
        const parsed = parseAllDocuments(source, { prettyErrors: false, uniqueKeys: true, strict: true });
        const theirs = (Array.isArray(parsed) ? parsed : []).map((d) => d.errors.filter((e) => e.code === 'DUPLICATE_KEY').length);
        if (JSON.stringify(ours) !== JSON.stringify(theirs)) throw new ContractViolation(`repeated keys per document: ${JSON.stringify(ours)}, the yaml package finds ${JSON.stringify(theirs)}`);
      }
    }
    return r.messages.some((m) => m.level === 'error') ? 'errors' : r.entries.length > 0 ? 'objects' : 'empty';
  },
};
