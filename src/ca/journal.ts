import { ROOT_KEY_TYPES } from './keys.js';
import type { Journal, RootRecord } from './rotation.js';
import type { RootKeyType } from './types.js';

/**
 * The rotation journal on disk (ca/journal.json): the source of truth for which roots
 * exist, which signs, and when that changes. Times are ISO-8601 so an operator can read
 * it; it is written atomically (temp + fsync + rename) and only under the CA lock.
 */

export class JournalFormatError extends Error {}

interface RootRecordJson {
  id: string;
  keyType: RootKeyType;
  fingerprint256: string;
  notBefore: string;
  notAfter: string;
  preparedAt: string;
  activateAt: string;
  pruneAt?: string;
}

export function serializeJournal(j: Journal): string {
  const iso = (ms: number): string => new Date(ms).toISOString();
  const roots: RootRecordJson[] = j.roots.map((r) => ({
    id: r.id,
    keyType: r.keyType,
    fingerprint256: r.fingerprint256,
    notBefore: iso(r.notBefore),
    notAfter: iso(r.notAfter),
    preparedAt: iso(r.preparedAt),
    activateAt: iso(r.activateAt),
    ...(r.pruneAt === undefined ? {} : { pruneAt: iso(r.pruneAt) }),
  }));
  return `${JSON.stringify({ version: j.version, trustDomain: j.trustDomain, roots }, null, 2)}\n`;
}

function field<T>(obj: Record<string, unknown>, key: string, where: string, check: (v: unknown) => v is T, want: string): T {
  const v = obj[key];
  if (!check(v)) throw new JournalFormatError(`${where}.${key} must be ${want}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === 'string';

function time(obj: Record<string, unknown>, key: string, where: string): number {
  const text = field(obj, key, where, isString, 'an ISO-8601 time');
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new JournalFormatError(`${where}.${key} "${text}" is not an ISO-8601 time`);
  return ms;
}

export function parseJournal(text: string): Journal {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new JournalFormatError(`not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new JournalFormatError('not a JSON object');
  const obj = raw as Record<string, unknown>;
  if (obj.version !== 1) throw new JournalFormatError(`unsupported version ${JSON.stringify(obj.version)} (expected 1)`);
  const trustDomain = field(obj, 'trustDomain', 'journal', isString, 'a string');
  const list = field(obj, 'roots', 'journal', Array.isArray, 'an array');
  if (list.length === 0) throw new JournalFormatError('journal.roots is empty');
  const ids = new Set<string>();
  const roots: RootRecord[] = list.map((entry, i) => {
    const where = `roots[${i}]`;
    if (typeof entry !== 'object' || entry === null) throw new JournalFormatError(`${where} is not an object`);
    const e = entry as Record<string, unknown>;
    const id = field(e, 'id', where, isString, 'a string');
    if (!/^root-\d+$/.test(id)) throw new JournalFormatError(`${where}.id "${id}" is not of the form root-<n>`);
    if (ids.has(id)) throw new JournalFormatError(`${where}.id "${id}" appears twice`);
    ids.add(id);
    const keyType = field(e, 'keyType', where, (v): v is RootKeyType => ROOT_KEY_TYPES.includes(v as RootKeyType), `one of ${ROOT_KEY_TYPES.join(', ')}`);
    const fingerprint256 = field(e, 'fingerprint256', where, (v): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v), 'a lowercase hex SHA-256');
    const record: RootRecord = {
      id, keyType, fingerprint256,
      notBefore: time(e, 'notBefore', where),
      notAfter: time(e, 'notAfter', where),
      preparedAt: time(e, 'preparedAt', where),
      activateAt: time(e, 'activateAt', where),
    };
    if (e.pruneAt !== undefined) record.pruneAt = time(e, 'pruneAt', where);
    return record;
  });
  return { version: 1, trustDomain, roots };
}
