import protobuf from 'protobufjs';
import { isIP } from 'node:net';
import { at, childPath, indexPath, isPlainObject, lookupMessage, typeName, mapKeyType, WRAPPER_SCALARS } from './proto-path.js';

/**
 * protoc-gen-validate (validate.rules) constraints, checked the way Envoy checks them when it
 * loads a config (MessageUtil::validate): Envoy rejects a resource whose constraint fails, so a
 * generated resource that breaks one would be NACKed.
 *
 * Input is the canonical object form (protobufjs field names, Duration {seconds, nanos}, wrappers
 * {value}, Any {'@type', ...}), as produced by proto-json.ts or by `Type.toObject({json: true})`.
 *
 * Implemented (every rule the Envoy protos meshd loads actually use, plus their close relatives):
 * - oneof `(validate.required)`;
 * - message.required / message.skip; any.required / in / not_in; duration.required / const / lt /
 *   lte / gt / gte / in / not_in; timestamp.required;
 * - string: const, len, min_len, max_len, len_bytes, min_bytes, max_bytes, pattern, prefix, suffix,
 *   contains, not_contains, in, not_in, ignore_empty, well_known (email, hostname, ip, ipv4, ipv6,
 *   uri, uri_ref, address, uuid, well_known_regex HTTP_HEADER_NAME / HTTP_HEADER_VALUE, strict or not);
 * - bytes: const length rules (len, min_len, max_len), ignore_empty;
 * - every numeric kind: const, lt, lte, gt, gte (PGV's exclusive-range form when lt < gt too),
 *   in, not_in, ignore_empty;
 * - bool.const; enum: const, defined_only, in, not_in;
 * - repeated: min_items, max_items, unique, items (any of the above per item), ignore_empty;
 * - map: min_pairs, max_pairs, keys, values, ignore_empty.
 * Left out: timestamp lt_now / gt_now / within (time-dependent), string.well_known hostname
 * edge cases beyond RFC 1123, bytes pattern/prefix (unused by Envoy's protos).
 *
 * As in PGV, a scalar that is not set is checked as its default (so `name` with min_len 1 fails
 * when absent), a message field only when set, a oneof member only when it is the one set.
 */

type Rules = Record<string, any>;

const NUMERIC = new Set(['float', 'double', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64']);

/** Rules of one field, merged from every `(validate.rules)...` option protobufjs parsed. */
const ruleCache = new WeakMap<protobuf.Field, Rules | null>();
function fieldRules(field: protobuf.Field): Rules | null {
  const cached = ruleCache.get(field);
  if (cached !== undefined) return cached;
  let merged: Rules | null = null;
  const parsed = (field as unknown as { parsedOptions?: Array<Record<string, unknown>> | null }).parsedOptions ?? [];
  for (const opt of parsed) {
    const r = opt['(validate.rules)'];
    if (isPlainObject(r)) merged = deepMerge(merged ?? {}, r);
  }
  ruleCache.set(field, merged);
  return merged;
}

function deepMerge(a: Rules, b: Rules): Rules {
  const out: Rules = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k], v) : v;
  return out;
}

function oneofRequired(oneof: protobuf.OneOf): boolean {
  return oneof.options?.['(validate.required)'] === true;
}

/** Checks every PGV rule of `type` on `obj` and everything below it; appends "path: message" errors. */
export function checkPgv(type: protobuf.Type, obj: Record<string, unknown>, path: string, errors: string[]): void {
  for (const oneof of type.oneofsArray) {
    if (oneofRequired(oneof) && !oneof.oneof.some((m) => isSet(obj[m]))) {
      errors.push(at(path, `one of ${oneof.oneof.join(', ')} is required (oneof ${oneof.name}, validate.required)`));
    }
  }
  for (const field of type.fieldsArray) {
    const value = obj[field.name];
    const declared = fieldRules(field);
    // Nothing to check: no rule on the field and nothing below it to descend into.
    if (declared === null && (!isSet(value) || !(field.resolvedType instanceof protobuf.Type))) continue;
    const p = childPath(path, field.name);
    const rules = declared ?? {};
    if (field.map) {
      if (isSet(value)) checkMap(field, rules, value as Record<string, unknown>, p, errors);
      else checkMap(field, rules, {}, p, errors);
      continue;
    }
    if (field.repeated) {
      const items = Array.isArray(value) ? value : [];
      checkRepeated(field, rules, items, p, errors);
      continue;
    }
    // A oneof member (or proto3 `optional`) is only validated when it is the one set.
    if (field.partOf && !isSet(value)) continue;
    checkSingle(field, rules, value, p, errors);
  }
}

function isSet(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function checkMap(field: protobuf.Field, rules: Rules, map: Record<string, unknown>, path: string, errors: string[]): void {
  const r: Rules = rules['map'] ?? {};
  const n = Object.keys(map).length;
  if (!(r['ignore_empty'] && n === 0)) {
    if (r['min_pairs'] !== undefined && n < Number(r['min_pairs'])) errors.push(at(path, `value must contain at least ${r['min_pairs']} pair(s) (map.min_pairs)`));
    if (r['max_pairs'] !== undefined && n > Number(r['max_pairs'])) errors.push(at(path, `value must contain no more than ${r['max_pairs']} pair(s) (map.max_pairs)`));
  }
  for (const [k, v] of Object.entries(map)) {
    const p = childPath(path, k);
    if (isPlainObject(r['keys'])) checkScalarKind(mapKeyType(field), (r['keys'] as Rules)[mapKeyType(field)], keyValue(mapKeyType(field), k), p, errors);
    checkSingle(field, isPlainObject(r['values']) ? r['values'] : {}, v, p, errors);
  }
}

function keyValue(keyType: string, key: string): unknown {
  if (keyType === 'string') return key;
  if (keyType === 'bool') return key === 'true';
  return key;
}

function checkRepeated(field: protobuf.Field, rules: Rules, items: unknown[], path: string, errors: string[]): void {
  const r: Rules = rules['repeated'] ?? {};
  if (!(r['ignore_empty'] && items.length === 0)) {
    if (r['min_items'] !== undefined && items.length < Number(r['min_items'])) {
      errors.push(at(path, `value must contain at least ${r['min_items']} item(s) (repeated.min_items)`));
    }
    if (r['max_items'] !== undefined && items.length > Number(r['max_items'])) {
      errors.push(at(path, `value must contain no more than ${r['max_items']} item(s) (repeated.max_items)`));
    }
    if (r['unique'] === true) {
      const seen = new Set<string>();
      items.forEach((item, i) => {
        const key = JSON.stringify(item);
        if (seen.has(key)) errors.push(at(indexPath(path, i), 'repeated value must contain unique items (repeated.unique)'));
        seen.add(key);
      });
    }
  }
  const itemRules: Rules = isPlainObject(r['items']) ? r['items'] : {};
  items.forEach((item, i) => checkSingle(field, itemRules, item, indexPath(path, i), errors));
}

/** One value of a field (singular field, one list item or one map value). */
function checkSingle(field: protobuf.Field, rules: Rules, value: unknown, path: string, errors: string[]): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    checkMessageValue(resolved, rules, value, path, errors);
    return;
  }
  if (resolved instanceof protobuf.Enum) {
    checkEnum(resolved, rules['enum'], isSet(value) ? value : 0, path, errors);
    return;
  }
  checkScalarKind(field.type, rules[field.type], isSet(value) ? value : defaultScalar(field.type), path, errors);
}

function defaultScalar(kind: string): unknown {
  if (kind === 'string') return '';
  if (kind === 'bool') return false;
  if (kind === 'bytes') return Buffer.alloc(0);
  return 0;
}

function checkMessageValue(type: protobuf.Type, rules: Rules, value: unknown, path: string, errors: string[]): void {
  const name = typeName(type);
  const present = isPlainObject(value);
  const required = rules['message']?.['required'] === true
    || rules['duration']?.['required'] === true
    || rules['timestamp']?.['required'] === true
    || rules['any']?.['required'] === true;
  if (!present) {
    if (required) errors.push(at(path, 'value is required'));
    return;
  }
  const obj = value as Record<string, unknown>;
  const wrapped = WRAPPER_SCALARS[name];
  if (wrapped !== undefined) {
    checkScalarKind(wrapped, rules[wrapped], isSet(obj['value']) ? obj['value'] : defaultScalar(wrapped), path, errors);
    return;
  }
  if (name === 'google.protobuf.Duration') {
    checkDuration(rules['duration'], obj, path, errors);
    return;
  }
  if (name === 'google.protobuf.Any') {
    checkAny(type, rules['any'], obj, path, errors);
    return;
  }
  if (rules['message']?.['skip'] === true) return;
  checkPgv(type, obj, path, errors);
}

function checkAny(anyType: protobuf.Type, r: Rules | undefined, obj: Record<string, unknown>, path: string, errors: string[]): void {
  const url = typeof obj['@type'] === 'string' ? obj['@type'] : typeof obj['type_url'] === 'string' ? obj['type_url'] : '';
  if (r) {
    if (Array.isArray(r['in']) && !r['in'].includes(url)) errors.push(at(path, `type URL must be in list [${r['in'].join(', ')}] (any.in)`));
    if (Array.isArray(r['not_in']) && r['not_in'].includes(url)) errors.push(at(path, `type URL must not be in list [${r['not_in'].join(', ')}] (any.not_in)`));
  }
  if (typeof obj['@type'] !== 'string') return;
  const target = lookupMessage(anyType.root as protobuf.Root, url);
  if (!target) return; // reported by the structural pass
  const inner: Record<string, unknown> = { ...obj };
  delete inner['@type'];
  if (WRAPPER_SCALARS[typeName(target)] === undefined && typeName(target) !== 'google.protobuf.Duration') checkPgv(target, inner, path, errors);
}

function durationNanos(d: unknown): bigint {
  if (!isPlainObject(d)) return 0n;
  const s = d['seconds'];
  const n = d['nanos'];
  return BigInt(String(s ?? 0)) * 1_000_000_000n + BigInt(String(n ?? 0));
}

function formatDuration(nanos: bigint): string {
  const neg = nanos < 0n;
  const abs = neg ? -nanos : nanos;
  const s = abs / 1_000_000_000n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${s}${frac ? `.${frac}` : ''}s`;
}

function checkDuration(r: Rules | undefined, obj: Record<string, unknown>, path: string, errors: string[]): void {
  if (!r) return;
  const v = durationNanos(obj);
  const bound = (k: string): bigint | undefined => (r[k] === undefined ? undefined : durationNanos(r[k]));
  checkOrdered(v, bound('const'), bound('lt'), bound('lte'), bound('gt'), bound('gte'), formatDuration, 'duration', path, errors);
  const list = (k: string): bigint[] | undefined => (Array.isArray(r[k]) ? r[k].map(durationNanos) : undefined);
  const inList = list('in');
  if (inList && !inList.includes(v)) errors.push(at(path, `value must be in list [${inList.map(formatDuration).join(', ')}] (duration.in)`));
  const notIn = list('not_in');
  if (notIn && notIn.includes(v)) errors.push(at(path, `value must not be in list [${notIn.map(formatDuration).join(', ')}] (duration.not_in)`));
}

/**
 * const / lt / lte / gt / gte with PGV's semantics: a lower and an upper bound make a range;
 * when the upper bound is below the lower one, the value must lie outside it (exclusive range).
 */
function checkOrdered<T extends number | bigint>(
  v: T, cst: T | undefined, lt: T | undefined, lte: T | undefined, gt: T | undefined, gte: T | undefined,
  show: (x: T) => string, kind: string, path: string, errors: string[],
): void {
  if (cst !== undefined && v !== cst) errors.push(at(path, `value must equal ${show(cst)} (${kind}.const)`));
  const lower = gt !== undefined ? { b: gt, excl: true } : gte !== undefined ? { b: gte, excl: false } : undefined;
  const upper = lt !== undefined ? { b: lt, excl: true } : lte !== undefined ? { b: lte, excl: false } : undefined;
  const aboveLower = (): boolean => (lower ? (lower.excl ? v > lower.b : v >= lower.b) : true);
  const belowUpper = (): boolean => (upper ? (upper.excl ? v < upper.b : v <= upper.b) : true);
  const lowerText = lower ? `${lower.excl ? 'greater than' : 'greater than or equal to'} ${show(lower.b)}` : '';
  const upperText = upper ? `${upper.excl ? 'less than' : 'less than or equal to'} ${show(upper.b)}` : '';
  const ruleNames = [gt !== undefined ? 'gt' : gte !== undefined ? 'gte' : '', lt !== undefined ? 'lt' : lte !== undefined ? 'lte' : '']
    .filter(Boolean).map((r) => `${kind}.${r}`).join(', ');
  if (lower && upper && upper.b < lower.b) {
    if (!(aboveLower() || belowUpper())) errors.push(at(path, `value must be ${upperText} or ${lowerText} (${ruleNames})`));
    return;
  }
  if (!aboveLower() || !belowUpper()) {
    const text = [lowerText, upperText].filter(Boolean).join(' and ');
    errors.push(at(path, `value must be ${text} (${ruleNames})`));
  }
}

function checkEnum(en: protobuf.Enum, r: Rules | undefined, value: unknown, path: string, errors: string[]): void {
  if (!r) return;
  const num = typeof value === 'number' ? value : en.values[String(value)];
  if (r['defined_only'] === true && (num === undefined || !Object.values(en.values).includes(num))) {
    errors.push(at(path, `value ${JSON.stringify(value)} must be one of the defined enum values of ${typeName(en)} (enum.defined_only)`));
  }
  if (r['const'] !== undefined && num !== Number(r['const'])) errors.push(at(path, `value must equal ${en.valuesById[Number(r['const'])] ?? r['const']} (enum.const)`));
  const names = (xs: unknown[]): string => xs.map((x) => en.valuesById[Number(x)] ?? String(x)).join(', ');
  if (Array.isArray(r['in']) && !r['in'].map(Number).includes(num as number)) errors.push(at(path, `value must be in list [${names(r['in'])}] (enum.in)`));
  if (Array.isArray(r['not_in']) && r['not_in'].map(Number).includes(num as number)) errors.push(at(path, `value must not be in list [${names(r['not_in'])}] (enum.not_in)`));
}

function checkScalarKind(kind: string, r: Rules | undefined, value: unknown, path: string, errors: string[]): void {
  if (!isPlainObject(r)) return;
  if (kind === 'string') checkString(r, String(value), path, errors);
  else if (kind === 'bytes') checkBytes(r, value, path, errors);
  else if (kind === 'bool') {
    if (r['const'] !== undefined && value !== r['const']) errors.push(at(path, `value must equal ${r['const']} (bool.const)`));
  } else if (NUMERIC.has(kind)) checkNumber(kind, r, value, path, errors);
}

function checkNumber(kind: string, r: Rules, value: unknown, path: string, errors: string[]): void {
  const isFloat = kind === 'float' || kind === 'double';
  if (isFloat) {
    const v = Number(value);
    if (r['ignore_empty'] === true && v === 0) return;
    const b = (k: string): number | undefined => (r[k] === undefined ? undefined : Number(r[k]));
    checkOrdered(v, b('const'), b('lt'), b('lte'), b('gt'), b('gte'), String, kind, path, errors);
    if (Array.isArray(r['in']) && !r['in'].map(Number).includes(v)) errors.push(at(path, `value must be in list [${r['in'].join(', ')}] (${kind}.in)`));
    if (Array.isArray(r['not_in']) && r['not_in'].map(Number).includes(v)) errors.push(at(path, `value must not be in list [${r['not_in'].join(', ')}] (${kind}.not_in)`));
    return;
  }
  const big = (x: unknown): bigint => {
    try {
      return BigInt(typeof x === 'object' && x !== null ? String(x) : (x as string | number));
    } catch {
      return 0n;
    }
  };
  const v = big(value);
  if (r['ignore_empty'] === true && v === 0n) return;
  const b = (k: string): bigint | undefined => (r[k] === undefined ? undefined : big(r[k]));
  checkOrdered(v, b('const'), b('lt'), b('lte'), b('gt'), b('gte'), String, kind, path, errors);
  if (Array.isArray(r['in']) && !r['in'].map(big).includes(v)) errors.push(at(path, `value must be in list [${r['in'].join(', ')}] (${kind}.in)`));
  if (Array.isArray(r['not_in']) && r['not_in'].map(big).includes(v)) errors.push(at(path, `value must not be in list [${r['not_in'].join(', ')}] (${kind}.not_in)`));
}

function checkBytes(r: Rules, value: unknown, path: string, errors: string[]): void {
  const n = typeof value === 'string' ? Buffer.from(value, 'base64').length : value instanceof Uint8Array ? value.length : 0;
  if (r['ignore_empty'] === true && n === 0) return;
  if (r['len'] !== undefined && n !== Number(r['len'])) errors.push(at(path, `value length must be ${r['len']} bytes (bytes.len)`));
  if (r['min_len'] !== undefined && n < Number(r['min_len'])) errors.push(at(path, `value length must be at least ${r['min_len']} bytes (bytes.min_len)`));
  if (r['max_len'] !== undefined && n > Number(r['max_len'])) errors.push(at(path, `value length must be at most ${r['max_len']} bytes (bytes.max_len)`));
}

// Envoy's HTTP header regexes (PGV well_known_regex): strict follows RFC 7230, non-strict only
// refuses NUL, CR and LF (what Envoy's codecs cannot carry).
const HEADER_NAME_STRICT = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
const HEADER_VALUE_STRICT = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;

function checkString(r: Rules, s: string, path: string, errors: string[]): void {
  if (r['ignore_empty'] === true && s === '') return;
  const runes = [...s].length;
  const bytes = Buffer.byteLength(s, 'utf8');
  const fail = (msg: string, rule: string): void => {
    errors.push(at(path, `${msg} (string.${rule})`));
  };
  if (r['const'] !== undefined && s !== r['const']) fail(`value must equal ${JSON.stringify(r['const'])}`, 'const');
  if (r['len'] !== undefined && runes !== Number(r['len'])) fail(`value length must be ${r['len']} characters`, 'len');
  if (r['min_len'] !== undefined && runes < Number(r['min_len'])) fail(`value length must be at least ${r['min_len']} characters`, 'min_len');
  if (r['max_len'] !== undefined && runes > Number(r['max_len'])) fail(`value length must be at most ${r['max_len']} characters`, 'max_len');
  if (r['len_bytes'] !== undefined && bytes !== Number(r['len_bytes'])) fail(`value length must be ${r['len_bytes']} bytes`, 'len_bytes');
  if (r['min_bytes'] !== undefined && bytes < Number(r['min_bytes'])) fail(`value length must be at least ${r['min_bytes']} bytes`, 'min_bytes');
  if (r['max_bytes'] !== undefined && bytes > Number(r['max_bytes'])) fail(`value length must be at most ${r['max_bytes']} bytes`, 'max_bytes');
  if (typeof r['pattern'] === 'string') {
    const re = compilePattern(r['pattern']);
    if (re && !re.test(s)) fail(`value does not match regex pattern ${JSON.stringify(r['pattern'])}`, 'pattern');
  }
  if (typeof r['prefix'] === 'string' && !s.startsWith(r['prefix'])) fail(`value does not have prefix ${JSON.stringify(r['prefix'])}`, 'prefix');
  if (typeof r['suffix'] === 'string' && !s.endsWith(r['suffix'])) fail(`value does not have suffix ${JSON.stringify(r['suffix'])}`, 'suffix');
  if (typeof r['contains'] === 'string' && !s.includes(r['contains'])) fail(`value does not contain substring ${JSON.stringify(r['contains'])}`, 'contains');
  if (typeof r['not_contains'] === 'string' && s.includes(r['not_contains'])) fail(`value contains substring ${JSON.stringify(r['not_contains'])}`, 'not_contains');
  if (Array.isArray(r['in']) && !r['in'].includes(s)) fail(`value must be in list [${r['in'].join(', ')}]`, 'in');
  if (Array.isArray(r['not_in']) && r['not_in'].includes(s)) fail(`value must not be in list [${r['not_in'].join(', ')}]`, 'not_in');
  const wk = r['well_known_regex'];
  if (wk === 'HTTP_HEADER_NAME' || wk === 'HTTP_HEADER_VALUE') {
    const strict = r['strict'] !== false;
    const re = strict ? (wk === 'HTTP_HEADER_NAME' ? HEADER_NAME_STRICT : HEADER_VALUE_STRICT) : HEADER_LOOSE;
    if (!re.test(s)) fail(`value does not match regex pattern for ${wk === 'HTTP_HEADER_NAME' ? 'an HTTP header name' : 'an HTTP header value'}`, 'well_known_regex');
  }
  if (r['email'] === true && !/^[^@\s]+@[^@\s]+$/.test(s)) fail('value must be a valid email address', 'email');
  if (r['hostname'] === true && !isHostname(s)) fail('value must be a valid hostname', 'hostname');
  if (r['ip'] === true && isIP(s) === 0) fail('value must be a valid IP address', 'ip');
  if (r['ipv4'] === true && isIP(s) !== 4) fail('value must be a valid IPv4 address', 'ipv4');
  if (r['ipv6'] === true && isIP(s) !== 6) fail('value must be a valid IPv6 address', 'ipv6');
  if (r['address'] === true && isIP(s) === 0 && !isHostname(s)) fail('value must be a valid hostname, or ip address', 'address');
  if (r['uuid'] === true && !/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s)) fail('value must be a valid UUID', 'uuid');
  if (r['uri'] === true && !isAbsoluteUri(s)) fail('value must be an absolute URI', 'uri');
}

/** RFC 1123 host name, as PGV's validateHostname. */
function isHostname(s: string): boolean {
  const host = s.endsWith('.') ? s.slice(0, -1) : s;
  if (host.length === 0 || host.length > 253) return false;
  return host.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

function isAbsoluteUri(s: string): boolean {
  try {
    return new URL(s).protocol !== '';
  } catch {
    return false;
  }
}

const patternCache = new Map<string, RegExp | null>();
/** PGV patterns are RE2; the ones in Envoy's protos are valid JavaScript regexes too. */
function compilePattern(pattern: string): RegExp | null {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern, 'u');
    } catch {
      re = null;
    }
    patternCache.set(pattern, re);
  }
  return re;
}
