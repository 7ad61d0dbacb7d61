import protobuf from 'protobufjs';
import { at, childPath, describeJson, indexPath, isPlainObject, jsonName, lookupMessage, typeName, mapKeyType, WRAPPER_SCALARS } from './proto-path.js';

/**
 * proto3-JSON (what Envoy reads from YAML/JSON config) → the object form protobufjs's
 * `fromObject` takes, checking structure on the way as Envoy's loader does
 * (MessageUtil::loadFromJson with unknown fields rejected):
 *
 * - field names: Envoy's snake_case or the lowerCamel JSON name; anything else is an unknown field;
 * - Duration / Timestamp as strings ("5s", RFC 3339), wrappers as bare values, Struct/Value/ListValue
 *   as plain JSON, FieldMask as "a,b" (the proto3-JSON mapping); their object forms are rejected,
 *   because Envoy rejects them too;
 * - Any by "@type": the type must be one meshd loads, the rest of the object is decoded as that type;
 * - enums by name (or number), scalars type- and range-checked, int64 as number or decimal string;
 * - at most one member of a oneof.
 *
 * The output uses protobufjs's field names (snake_case, keepCase root), Duration as {seconds, nanos},
 * wrappers as {value}, Any as {'@type', ...fields}: the same shape `Type.toObject({json: true})` gives,
 * which is what the PGV checks (pgv-rules.ts) read.
 */
interface ProtoJsonResult {
  value: Record<string, unknown> | undefined;
  errors: string[];
  /** Deprecated fields in use (Envoy logs a warning for them). */
  warnings: string[];
}

interface Ctx {
  errors: string[];
  warnings: string[];
  /** Field names of google.protobuf.Value in this root (protobufjs's bundled struct.proto is lowerCamel). */
  valueKey: (jsonKey: string) => string;
}

export function normalizeProtoJson(type: protobuf.Type, json: unknown): ProtoJsonResult {
  const ctx: Ctx = { errors: [], warnings: [], valueKey: valueKeys(type.root as protobuf.Root) };
  const value = normalizeMessage(type, json, '', ctx);
  return { value: isPlainObject(value) ? value : undefined, errors: ctx.errors, warnings: ctx.warnings };
}

const valueKeyCache = new WeakMap<protobuf.Root, (k: string) => string>();
function valueKeys(root: protobuf.Root): (jsonKey: string) => string {
  let fn = valueKeyCache.get(root);
  if (!fn) {
    const names = new Map<string, string>();
    const valueType = lookupMessage(root, 'google.protobuf.Value');
    for (const f of valueType?.fieldsArray ?? []) names.set(jsonName(f.name), f.name);
    fn = (k) => names.get(k) ?? k;
    valueKeyCache.set(root, fn);
  }
  return fn;
}


/** Well-known types whose proto3-JSON form is not an object of their fields. */
function hasSpecialJson(type: protobuf.Type): boolean {
  const name = typeName(type);
  return name in WRAPPER_SCALARS || SPECIAL.has(name);
}
const SPECIAL = new Set([
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
  'google.protobuf.FieldMask',
]);

function normalizeMessage(type: protobuf.Type, json: unknown, path: string, ctx: Ctx): unknown {
  const name = typeName(type);
  const wrapped = WRAPPER_SCALARS[name];
  if (wrapped !== undefined) {
    if (isPlainObject(json)) {
      ctx.errors.push(at(path, `${name} is written as its bare value in proto3 JSON (e.g. ${wrapperExample(wrapped)}), got an object`));
      return undefined;
    }
    const v = normalizeScalar(wrapped, json, path, ctx);
    return v === undefined ? undefined : { value: v };
  }
  switch (name) {
    case 'google.protobuf.Duration': return normalizeDuration(json, path, ctx);
    case 'google.protobuf.Timestamp': return normalizeTimestamp(json, path, ctx);
    case 'google.protobuf.Struct': return normalizeStruct(json, path, ctx);
    case 'google.protobuf.Value': return normalizeValue(json, path, ctx);
    case 'google.protobuf.ListValue': return normalizeList(json, path, ctx);
    case 'google.protobuf.FieldMask': return normalizeFieldMask(json, path, ctx);
    case 'google.protobuf.Any': return normalizeAny(type, json, path, ctx);
    default: return normalizeFields(type, json, path, ctx);
  }
}

function wrapperExample(scalar: string): string {
  if (scalar === 'bool') return 'true';
  if (scalar === 'string' || scalar === 'bytes') return '"text"';
  return '5';
}

/** Field lookup by Envoy name or lowerCamel JSON name, built once per type. */
const fieldIndex = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();
function fieldByKey(type: protobuf.Type, key: string): protobuf.Field | undefined {
  let index = fieldIndex.get(type);
  if (!index) {
    index = new Map();
    for (const f of type.fieldsArray) {
      index.set(f.name, f);
      index.set(jsonName(f.name), f);
      const declared = f.options?.['json_name'];
      if (typeof declared === 'string') index.set(declared, f);
    }
    fieldIndex.set(type, index);
  }
  return index.get(key);
}

function normalizeFields(type: protobuf.Type, json: unknown, path: string, ctx: Ctx): Record<string, unknown> | undefined {
  if (!isPlainObject(json)) {
    ctx.errors.push(at(path, `expected an object (${typeName(type)}), got ${describeJson(json)}`));
    return undefined;
  }
  const out: Record<string, unknown> = {};
  const keyUsed = new Map<string, string>();
  for (const [key, raw] of Object.entries(json)) {
    const p = childPath(path, key);
    const field = fieldByKey(type, key);
    if (!field) {
      ctx.errors.push(at(p, `unknown field "${key}" in ${typeName(type)}`));
      continue;
    }
    const earlier = keyUsed.get(field.name);
    if (earlier !== undefined) {
      ctx.errors.push(at(p, `field ${field.name} given twice (as "${earlier}" and "${key}")`));
      continue;
    }
    keyUsed.set(field.name, key);
    if (field.options?.['deprecated'] === true) ctx.warnings.push(at(p, `deprecated field ${typeName(type)}.${field.name}`));
    // proto3 JSON: null means "not set", except for google.protobuf.Value where it is null_value.
    if (raw === undefined) continue;
    if (raw === null && !(field.resolvedType && typeName(field.resolvedType) === 'google.protobuf.Value' && !field.repeated)) continue;
    const v = normalizeField(field, raw, p, ctx);
    if (v !== undefined) out[field.name] = v;
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.oneof.filter((member) => out[member] !== undefined);
    if (set.length > 1) {
      ctx.errors.push(at(path, `only one of ${set.join(', ')} may be set (oneof ${oneof.name})`));
    }
  }
  return out;
}

function normalizeField(field: protobuf.Field, raw: unknown, path: string, ctx: Ctx): unknown {
  if (field.map) {
    if (!isPlainObject(raw)) {
      ctx.errors.push(at(path, `expected an object (map<${mapKeyType(field)}, ${field.type}>), got ${describeJson(raw)}`));
      return undefined;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) {
      const p = childPath(path, k);
      if (!validMapKey(mapKeyType(field), k)) {
        ctx.errors.push(at(p, `map key ${JSON.stringify(k)} is not a valid ${mapKeyType(field)}`));
        continue;
      }
      const n = normalizeSingle(field, v, p, ctx);
      if (n !== undefined) out[k] = n;
    }
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(raw)) {
      ctx.errors.push(at(path, `expected a list, got ${describeJson(raw)}`));
      return undefined;
    }
    const out: unknown[] = [];
    raw.forEach((item, i) => {
      const p = indexPath(path, i);
      if (item === null) {
        ctx.errors.push(at(p, 'null is not allowed in a list'));
        return;
      }
      const n = normalizeSingle(field, item, p, ctx);
      if (n !== undefined) out.push(n);
    });
    return out;
  }
  return normalizeSingle(field, raw, path, ctx);
}

function validMapKey(keyType: string, key: string): boolean {
  switch (keyType) {
    case 'string': return true;
    case 'bool': return key === 'true' || key === 'false';
    default: return /^-?\d+$/.test(key) && integerInRange(keyType, BigInt(key));
  }
}

function normalizeSingle(field: protobuf.Field, raw: unknown, path: string, ctx: Ctx): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return normalizeMessage(resolved, raw, path, ctx);
  if (resolved instanceof protobuf.Enum) return normalizeEnum(resolved, raw, path, ctx);
  return normalizeScalar(field.type, raw, path, ctx);
}

function normalizeEnum(en: protobuf.Enum, raw: unknown, path: string, ctx: Ctx): unknown {
  if (typeName(en) === 'google.protobuf.NullValue' && raw === null) return 'NULL_VALUE';
  if (typeof raw === 'string') {
    if (Object.prototype.hasOwnProperty.call(en.values, raw)) return raw;
    const names = Object.keys(en.values);
    const shown = names.length <= 12 ? names.join(', ') : `${names.slice(0, 12).join(', ')}, ...`;
    ctx.errors.push(at(path, `unknown enum value ${JSON.stringify(raw)} (${typeName(en)} has ${shown})`));
    return undefined;
  }
  // proto3 JSON accepts the number too; whether it must be defined is PGV's enum.defined_only.
  if (typeof raw === 'number' && Number.isInteger(raw) && integerInRange('int32', BigInt(raw))) return raw;
  ctx.errors.push(at(path, `expected an enum name (${typeName(en)}), got ${describeJson(raw)}`));
  return undefined;
}

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

function integerInRange(scalar: string, v: bigint): boolean {
  const range = INT_RANGES[scalar];
  return range !== undefined && v >= range[0] && v <= range[1];
}

function normalizeScalar(scalar: string, raw: unknown, path: string, ctx: Ctx): unknown {
  switch (scalar) {
    case 'string':
      if (typeof raw === 'string') return raw;
      break;
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      break;
    case 'double':
    case 'float': {
      let n: number | undefined;
      if (typeof raw === 'number') n = raw;
      else if (raw === 'NaN') n = NaN;
      else if (raw === 'Infinity') n = Infinity;
      else if (raw === '-Infinity') n = -Infinity;
      else if (typeof raw === 'string' && raw.trim() !== '' && Number.isFinite(Number(raw))) n = Number(raw);
      if (n === undefined) break;
      if (scalar === 'float' && Number.isFinite(n) && Math.abs(n) > 3.4028234663852886e38) {
        ctx.errors.push(at(path, `${n} is out of range for float`));
        return undefined;
      }
      return n;
    }
    case 'bytes':
      if (typeof raw === 'string') {
        if (/^[A-Za-z0-9+/_-]*={0,2}$/.test(raw)) return Buffer.from(raw, 'base64');
        ctx.errors.push(at(path, 'bytes must be base64 in proto3 JSON'));
        return undefined;
      }
      break;
    default: {
      if (!(scalar in INT_RANGES)) break;
      let v: bigint | undefined;
      if (typeof raw === 'number' && Number.isInteger(raw)) v = BigInt(raw);
      else if (typeof raw === 'string' && /^-?\d+$/.test(raw)) v = BigInt(raw);
      if (v === undefined) break;
      if (!integerInRange(scalar, v)) {
        ctx.errors.push(at(path, `${v} is out of range for ${scalar}`));
        return undefined;
      }
      // 64-bit values stay strings so protobufjs (with long.js) keeps every digit.
      return scalar.endsWith('64') ? v.toString() : Number(v);
    }
  }
  ctx.errors.push(at(path, `expected ${article(scalar)} ${scalar}, got ${describeJson(raw)}`));
  return undefined;
}

function article(scalar: string): string {
  return /^(int|sint|sfixed)/.test(scalar) ? 'an' : 'a';
}

const MAX_DURATION_SECONDS = 315_576_000_000n;

/** proto3 JSON Duration: "1.5s", "-0.001s"; up to 9 fractional digits, ±10,000 years. */
function normalizeDuration(raw: unknown, path: string, ctx: Ctx): unknown {
  if (typeof raw !== 'string') {
    ctx.errors.push(at(path, `expected a duration string such as "5s" or "0.250s", got ${describeJson(raw)}`));
    return undefined;
  }
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(raw);
  if (!m) {
    ctx.errors.push(at(path, `invalid duration ${JSON.stringify(raw)}: proto3 JSON wants seconds with an "s" suffix, such as "5s" or "0.250s"`));
    return undefined;
  }
  const seconds = BigInt(m[2]!);
  if (seconds > MAX_DURATION_SECONDS) {
    ctx.errors.push(at(path, `duration ${JSON.stringify(raw)} is out of range (at most ${MAX_DURATION_SECONDS}s)`));
    return undefined;
  }
  const sign = m[1] === '-' ? -1 : 1;
  const nanos = Number((m[3] ?? '').padEnd(9, '0'));
  return { seconds: (seconds * BigInt(sign)).toString(), nanos: nanos * sign };
}

/** proto3 JSON Timestamp: RFC 3339 with "Z" or an offset, up to 9 fractional digits. */
function normalizeTimestamp(raw: unknown, path: string, ctx: Ctx): unknown {
  const m = typeof raw === 'string'
    ? /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(raw)
    : null;
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) {
    ctx.errors.push(at(path, `expected an RFC 3339 timestamp such as "2024-01-02T03:04:05Z", got ${describeJson(raw)}`));
    return undefined;
  }
  return { seconds: String(Math.floor(ms / 1000)), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

function normalizeStruct(raw: unknown, path: string, ctx: Ctx): unknown {
  if (!isPlainObject(raw)) {
    ctx.errors.push(at(path, `expected an object (google.protobuf.Struct), got ${describeJson(raw)}`));
    return undefined;
  }
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    const n = normalizeValue(v, childPath(path, k), ctx);
    if (n !== undefined) fields[k] = n;
  }
  return { fields };
}

function normalizeList(raw: unknown, path: string, ctx: Ctx): unknown {
  if (!Array.isArray(raw)) {
    ctx.errors.push(at(path, `expected a list (google.protobuf.ListValue), got ${describeJson(raw)}`));
    return undefined;
  }
  const values: unknown[] = [];
  raw.forEach((v, i) => {
    const n = normalizeValue(v, indexPath(path, i), ctx);
    if (n !== undefined) values.push(n);
  });
  return { values };
}

function normalizeValue(raw: unknown, path: string, ctx: Ctx): unknown {
  if (raw === null) return { [ctx.valueKey('nullValue')]: 'NULL_VALUE' };
  if (typeof raw === 'string') return { [ctx.valueKey('stringValue')]: raw };
  if (typeof raw === 'boolean') return { [ctx.valueKey('boolValue')]: raw };
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) {
      ctx.errors.push(at(path, 'a google.protobuf.Value number must be finite'));
      return undefined;
    }
    return { [ctx.valueKey('numberValue')]: raw };
  }
  if (Array.isArray(raw)) {
    const list = normalizeList(raw, path, ctx);
    return list === undefined ? undefined : { [ctx.valueKey('listValue')]: list };
  }
  if (isPlainObject(raw)) {
    const struct = normalizeStruct(raw, path, ctx);
    return struct === undefined ? undefined : { [ctx.valueKey('structValue')]: struct };
  }
  ctx.errors.push(at(path, `not a JSON value: ${describeJson(raw)}`));
  return undefined;
}

function normalizeFieldMask(raw: unknown, path: string, ctx: Ctx): unknown {
  if (typeof raw !== 'string') {
    ctx.errors.push(at(path, `expected a field mask string such as "a.b,c", got ${describeJson(raw)}`));
    return undefined;
  }
  const paths = raw === '' ? [] : raw.split(',').map((p) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
  return { paths };
}

/**
 * Any: {"@type": "type.googleapis.com/<message>", ...fields}. Envoy resolves the type from its
 * descriptor pool and rejects one it does not know; here the pool is what src/envoy/protos.ts loads.
 * A well-known type with a special JSON form carries it under "value" (proto3-JSON rule).
 */
function normalizeAny(anyType: protobuf.Type, raw: unknown, path: string, ctx: Ctx): unknown {
  if (!isPlainObject(raw)) {
    ctx.errors.push(at(path, `expected an object with "@type" (google.protobuf.Any), got ${describeJson(raw)}`));
    return undefined;
  }
  const url = raw['@type'];
  if (typeof url !== 'string' || url === '') {
    ctx.errors.push(at(path, 'google.protobuf.Any needs "@type" (e.g. "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")'));
    return undefined;
  }
  if (!url.includes('/')) {
    ctx.errors.push(at(childPath(path, '@type'), `type URL ${JSON.stringify(url)} has no "/" (expected type.googleapis.com/${url})`));
    return undefined;
  }
  const target = lookupMessage(anyType.root as protobuf.Root, url);
  if (!target) {
    ctx.errors.push(at(childPath(path, '@type'), `unknown @type ${JSON.stringify(url)} (not a message type meshd's Envoy protos define)`));
    return undefined;
  }
  const rest: Record<string, unknown> = { ...raw };
  delete rest['@type'];
  if (hasSpecialJson(target)) {
    const extra = Object.keys(rest).filter((k) => k !== 'value');
    for (const k of extra) ctx.errors.push(at(childPath(path, k), `unknown field "${k}" in an Any of ${typeName(target)} (its JSON goes under "value")`));
    const inner = normalizeMessage(target, rest['value'], childPath(path, 'value'), ctx);
    return isPlainObject(inner) ? { '@type': url, ...inner } : undefined;
  }
  const inner = normalizeMessage(target, rest, path, ctx);
  return isPlainObject(inner) ? { '@type': url, ...inner } : undefined;
}
