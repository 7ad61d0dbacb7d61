/**
 * Typed, strict reading of a YAML value into the model. Like istioctl (which unmarshals
 * strictly), an unknown field is an error: a typo such as `mtls: {mdoe: STRICT}` would
 * otherwise silently mean UNSET. Every finding carries the path of the field so the loader
 * can report its line.
 */
import type { FieldPath } from './yaml-source.js';

export interface Issue {
  level: 'error' | 'warning';
  path: FieldPath;
  message: string;
}

export class Issues {
  readonly list: Issue[] = [];
  error(path: FieldPath, message: string): void {
    this.list.push({ level: 'error', path, message });
  }
  warn(path: FieldPath, message: string): void {
    this.list.push({ level: 'warning', path, message });
  }
  get hasErrors(): boolean {
    return this.list.some((i) => i.level === 'error');
  }
}

export type YamlMap = Record<string, unknown>;

export function isPlainMap(v: unknown): v is YamlMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Dotted name of a path for messages: spec.ports[0].name. */
export function pathName(path: FieldPath): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

export class Reader {
  constructor(readonly issues: Issues) {}

  /** A map field; undefined when absent or null; an error when not a map. */
  map(v: unknown, path: FieldPath): YamlMap | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isPlainMap(v)) {
      this.issues.error(path, `${pathName(path)} must be a map, got ${typeName(v)}`);
      return undefined;
    }
    return v;
  }

  /** Report every key not in `allowed` as istioctl's strict unmarshal does. */
  fields(m: YamlMap, path: FieldPath, allowed: readonly string[]): void {
    for (const key of Object.keys(m)) {
      if (!allowed.includes(key)) {
        this.issues.error([...path, key], `unknown field ${JSON.stringify(key)} in ${pathName(path) || 'the document'}`);
      }
    }
  }

  string(v: unknown, path: FieldPath): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.issues.error(path, `${pathName(path)} must be a string, got ${typeName(v)}`);
      return undefined;
    }
    return v;
  }

  bool(v: unknown, path: FieldPath): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') {
      this.issues.error(path, `${pathName(path)} must be true or false, got ${typeName(v)}`);
      return undefined;
    }
    return v;
  }

  /** A non-negative integer (proto uint32); strings of digits are accepted as YAML users write them. */
  uint(v: unknown, path: FieldPath): number | undefined {
    if (v === undefined || v === null) return undefined;
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      this.issues.error(path, `${pathName(path)} must be a non-negative integer, got ${typeName(v)}`);
      return undefined;
    }
    return n;
  }

  stringList(v: unknown, path: FieldPath): string[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.issues.error(path, `${pathName(path)} must be a list of strings, got ${typeName(v)}`);
      return [];
    }
    const out: string[] = [];
    v.forEach((item, i) => {
      const s = this.string(item, [...path, i]);
      if (s !== undefined) out.push(s);
    });
    return out;
  }

  /** map<string,string> (labels, annotations, matchLabels). Scalars are taken as their text, as Kubernetes rejects them but users write `version: 1`. */
  stringMap(v: unknown, path: FieldPath): Record<string, string> | undefined {
    const m = this.map(v, path);
    if (m === undefined) return undefined;
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(m)) {
      if (typeof val === 'string') out[k] = val;
      else if (typeof val === 'number' || typeof val === 'boolean') {
        this.issues.error([...path, k], `${pathName([...path, k])} must be a string, got ${typeName(val)} (quote it)`);
      } else if (val === null || val === undefined) out[k] = '';
      else this.issues.error([...path, k], `${pathName([...path, k])} must be a string, got ${typeName(val)}`);
    }
    return out;
  }

  /** An enum value, case-sensitive as protobuf JSON is. */
  enumValue<T extends string>(v: unknown, path: FieldPath, values: readonly T[]): T | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      this.issues.error(path, `unknown value ${JSON.stringify(v)} for ${pathName(path)}, expected one of ${values.join(', ')}`);
      return undefined;
    }
    return v as T;
  }
}
