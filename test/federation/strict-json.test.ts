import t from 'tap';
import { JsonSyntaxError, MAX_JSON_DEPTH, parseStrictJson } from '../../src/federation/strict-json.js';

t.test('reads what JSON.parse reads, for every kind of value', async (t) => {
  const docs = [
    '{"keys":[],"a":true,"b":false,"c":null,"d":-1.5e3,"e":"x\\u00e9\\n\\"\\\\\\/","f":[1,[2,{}]]}',
    ' [ ] ', '0', '"plain"', '{"nested":{"deep":{"deeper":[{}]}}}',
  ];
  for (const d of docs) t.same(parseStrictJson(d), JSON.parse(d), d);
});

t.test('a member name repeated in one object is refused, with where (JSON.parse keeps the last silently)', async (t) => {
  const text = '{\n  "keys": [],\n  "keys": [{"use": "x509-svid"}]\n}';
  t.equal((JSON.parse(text) as { keys: unknown[] }).keys.length, 1, 'JSON.parse quietly takes the second');
  t.throws(() => parseStrictJson(text), new JsonSyntaxError('duplicate member name "keys"', 3, 3));
  t.throws(() => parseStrictJson('{"a":{"x":1,"x":2}}'), /duplicate member name "x"/);
  t.same(parseStrictJson('[{"x":1},{"x":2}]'), [{ x: 1 }, { x: 2 }], 'the same name in two objects is fine');
});

t.test('integers beyond 2^53 are exact bigints; others are numbers', async (t) => {
  t.equal(parseStrictJson('18446744073709551615'), 18446744073709551615n);
  t.equal(parseStrictJson('9007199254740993'), 9007199254740993n, 'JSON.parse would round this to ...992');
  t.equal(parseStrictJson('9007199254740991'), 9007199254740991);
  t.equal(parseStrictJson('12.0'), 12);
});

t.test('nesting is bounded, so a hostile document cannot exhaust the stack', async (t) => {
  t.doesNotThrow(() => parseStrictJson('['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1)));
  t.throws(() => parseStrictJson('['.repeat(100_000)), /nesting deeper than 32 levels/);
});

t.test('"__proto__" is plain data, not a prototype', async (t) => {
  const v = parseStrictJson('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
  t.same(Object.keys(v), ['__proto__']);
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  t.equal(Object.getPrototypeOf(v), null);
});

t.test('syntax errors say what and where', async (t) => {
  const rows: [string, RegExp][] = [
    ['', /unexpected end of the document at line 1, column 1/],
    ['{"a":1,}', /expected a quoted member name/],
    ['{"a" 1}', /expected ":"/],
    ['[1 2]', /expected "," or "]"/],
    ['{"a":1} x', /unexpected text after the JSON value/],
    ['"tab\there"', /control character/],
    ['"\\x"', /bad escape/],
    ['"\\u12"', /bad \\u escape/],
    ['"open', /unterminated string/],
    ['01', /unexpected text after/],
    ['-', /malformed number/],
    ['NaN', /unexpected character "N"/],
    ['{\n\n  "a": tru\n}', /at line 3, column 8/],
  ];
  for (const [text, err] of rows) t.throws(() => parseStrictJson(text), err, JSON.stringify(text));
});
