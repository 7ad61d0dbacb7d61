/**
 * A JSON reader (RFC 8259) for documents from outside the process, stricter than JSON.parse
 * where a bundle's meaning depends on it:
 * - a name repeated in one object is refused: JSON.parse keeps the last one silently, so
 *   two readers could see different keys (SPIFFE Trust Domain and Bundle §6.3);
 * - integers beyond 2^53 come back as bigint, not rounded: spiffe_sequence needs 64 bits (§4.1.1);
 * - nesting is bounded, so a hostile document cannot exhaust the stack.
 * Objects are made without a prototype, so a "__proto__" key is plain data.
 */

export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly line: number, readonly column: number) {
    super(`${message} at line ${line}, column ${column}`);
    this.name = 'JsonSyntaxError';
  }
}

export const MAX_JSON_DEPTH = 32;

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class Reader {
  private i = 0;

  constructor(private readonly text: string) {}

  document(): JsonValue {
    this.space();
    const value = this.value(0);
    this.space();
    if (this.i < this.text.length) this.fail('unexpected text after the JSON value');
    return value;
  }

  private fail(message: string): never {
    const before = this.text.slice(0, this.i);
    const line = before.split('\n').length;
    throw new JsonSyntaxError(message, line, this.i - before.lastIndexOf('\n'));
  }

  private space(): void {
    while (this.i < this.text.length && ' \t\n\r'.includes(this.text[this.i]!)) this.i++;
  }

  private value(depth: number): JsonValue {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
    const c = this.text[this.i];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    return this.fail(c === undefined ? 'unexpected end of the document' : `unexpected character ${JSON.stringify(c)}`);
  }

  private object(depth: number): JsonObject {
    const out: JsonObject = Object.create(null) as JsonObject;
    const seen = new Set<string>();
    this.i++;
    this.space();
    if (this.text[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      if (this.text[this.i] !== '"') this.fail('expected a quoted member name');
      const at = this.i;
      const key = this.string();
      if (seen.has(key)) {
        this.i = at;
        this.fail(`duplicate member name ${JSON.stringify(key)}`);
      }
      seen.add(key);
      this.space();
      if (this.text[this.i] !== ':') this.fail('expected ":" after a member name');
      this.i++;
      this.space();
      out[key] = this.value(depth + 1);
      this.space();
      const c = this.text[this.i++];
      if (c === '}') return out;
      if (c !== ',') {
        this.i--;
        this.fail('expected "," or "}" in an object');
      }
      this.space();
    }
  }

  private array(depth: number): JsonValue[] {
    const out: JsonValue[] = [];
    this.i++;
    this.space();
    if (this.text[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.space();
      const c = this.text[this.i++];
      if (c === ']') return out;
      if (c !== ',') {
        this.i--;
        this.fail('expected "," or "]" in an array');
      }
      this.space();
    }
  }

  private string(): string {
    this.i++; // opening quote
    let out = '';
    let start = this.i;
    for (;;) {
      const c = this.text[this.i];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') {
        out += this.text.slice(start, this.i);
        this.i++;
        return out;
      }
      if (c < ' ') this.fail('control character in a string (escape it)');
      if (c !== '\\') {
        this.i++;
        continue;
      }
      out += this.text.slice(start, this.i);
      const e = this.text[this.i + 1];
      if (e === 'u') {
        const hex = this.text.slice(this.i + 2, this.i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        this.i += 6;
      } else if (e !== undefined && e in ESCAPES) {
        out += ESCAPES[e];
        this.i += 2;
      } else {
        this.fail('bad escape in a string');
      }
      start = this.i;
    }
  }

  private number(): number | bigint {
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.text);
    if (!m) this.fail('malformed number');
    this.i += m[0].length;
    if (m[1] === undefined && m[2] === undefined) {
      const n = Number(m[0]);
      return Number.isSafeInteger(n) ? n : BigInt(m[0]);
    }
    return Number(m[0]);
  }
}

/** Parses one JSON document; throws JsonSyntaxError with line and column. */
export function parseStrictJson(text: string): JsonValue {
  return new Reader(text).document();
}

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What a value is, for messages: "a string", "an array", "the number 3". */
export function describeJson(v: JsonValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'boolean') return `${v}`;
  return `the number ${String(v)}`;
}
