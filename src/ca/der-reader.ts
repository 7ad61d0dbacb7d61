/**
 * A strict, zero-copy DER reader (X.690 §8, §10): definite lengths in their shortest form,
 * low tag numbers only, every byte accounted for. Elements are offsets into the input, so
 * "the exact bytes of the TBSCertificate" is a subarray, not a re-encoding.
 *
 * Why not forge.asn1 here: it is lenient (BER lengths, indefinite forms) and copies into
 * binary strings; checking DER by re-encoding with it cost ~60% of the validator, which
 * runs on every issuance. forge still parses CSRs (csr.ts), where the time does not matter.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

export interface Element {
  tag: number;
  /** Offset of the tag octet. */
  start: number;
  /** Offset of the first content octet. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
  buf: Buffer;
}

export const isConstructed = (e: Element): boolean => (e.tag & 0x20) !== 0;

function readAt(buf: Buffer, offset: number, limit: number, what: string): Element {
  if (offset + 2 > limit) throw new DerError(`${what}: truncated`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`${what}: high tag numbers are not used in X.509`);
  const first = buf[offset + 1]!;
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = offset + 2;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError(`${what}: indefinite length (BER, not DER)`);
    if (n > 4) throw new DerError(`${what}: length too large`);
    if (offset + 2 + n > limit) throw new DerError(`${what}: truncated`);
    if (buf[offset + 2] === 0) throw new DerError(`${what}: length has leading zero octets (not DER)`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[offset + 2 + i]!;
    if (length < 0x80 || (n > 1 && length < 256 ** (n - 1))) throw new DerError(`${what}: length not in its shortest form (not DER)`);
    contentStart = offset + 2 + n;
  }
  const end = contentStart + length;
  if (end > limit) throw new DerError(`${what}: truncated (needs ${end - limit} more bytes)`);
  return { tag, start: offset, contentStart, end, buf };
}

/** The single element filling `buf`. */
export function readDer(buf: Buffer, what: string): Element {
  const e = readAt(buf, 0, buf.length, what);
  if (e.end !== buf.length) throw new DerError(`${what}: ${buf.length - e.end} bytes after the end`);
  return e;
}

/** The elements inside a constructed element. */
export function childrenOf(e: Element, what: string): Element[] {
  if (!isConstructed(e)) throw new DerError(`${what}: expected a constructed value`);
  const out: Element[] = [];
  for (let at = e.contentStart; at < e.end;) {
    const child = readAt(e.buf, at, e.end, what);
    out.push(child);
    at = child.end;
  }
  return out;
}

export function expect(e: Element | undefined, tag: number, what: string): Element {
  if (!e) throw new DerError(`${what}: missing`);
  if (e.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${e.tag.toString(16)}`);
  return e;
}

/** A SEQUENCE's elements, with a count check. */
export function sequenceOf(e: Element | undefined, what: string, min: number, max = min): Element[] {
  const items = childrenOf(expect(e, 0x30, what), what);
  if (items.length < min || items.length > max) {
    throw new DerError(`${what}: expected ${min === max ? min : `${min}-${max}`} elements, found ${items.length}`);
  }
  return items;
}

export const content = (e: Element): Buffer => e.buf.subarray(e.contentStart, e.end);
export const raw = (e: Element): Buffer => e.buf.subarray(e.start, e.end);

/** Dotted OIDs by the hash of their content octets; each entry keeps its octets to confirm a hit. */
const oidNames = new Map<number, { octets: Buffer; dotted: string }>();

/** FNV-1a over the content octets: a certificate repeats a dozen OIDs, looked up without a string. */
function octetHash(buf: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}

/** OBJECT IDENTIFIER content to dotted form (X.690 §8.19), cached. */
export function oidOf(e: Element | undefined, what: string): string {
  const el = expect(e, 0x06, what);
  const h = octetHash(el.buf, el.contentStart, el.end);
  const known = oidNames.get(h);
  if (known !== undefined && known.octets.length === el.end - el.contentStart && el.buf.compare(known.octets, 0, known.octets.length, el.contentStart, el.end) === 0) return known.dotted;
  const octets = content(el);
  const dotted = decodeOid(octets, what);
  if (oidNames.size < 1024) oidNames.set(h, { octets: Buffer.from(octets), dotted });
  return dotted;
}

function decodeOid(c: Buffer, what: string): string {
  if (c.length === 0 || c[c.length - 1]! & 0x80) throw new DerError(`${what}: malformed OBJECT IDENTIFIER`);
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < c.length; i++) {
    if (value === 0 && c[i] === 0x80) throw new DerError(`${what}: OBJECT IDENTIFIER arc not minimal`);
    value = value * 128 + (c[i]! & 0x7f);
    if ((c[i]! & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** BIT STRING content after the unused-bits octet; whole octets only unless `named`. */
export function bitsOf(e: Element | undefined, what: string, named = false): { unused: number; bytes: Buffer } {
  const c = content(expect(e, 0x03, what));
  if (c.length === 0) throw new DerError(`${what}: empty BIT STRING`);
  const unused = c[0]!;
  if (unused > 7 || (unused > 0 && c.length === 1)) throw new DerError(`${what}: bad unused-bits count`);
  if (!named && unused !== 0) throw new DerError(`${what}: not a whole number of octets`);
  return { unused, bytes: c.subarray(1) };
}

/** `n` ASCII digits at `at` as a number; NaN when any is not a digit. */
function digits(buf: Buffer, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return Number.NaN;
    v = v * 10 + d;
  }
  return v;
}

/** UTCTime / GeneralizedTime in RFC 5280's restricted forms (§4.1.2.5.1, §4.1.2.5.2): digits, then Z. */
export function timeOf(e: Element | undefined, what: string): number {
  if (!e) throw new DerError(`${what}: missing`);
  const { buf, contentStart: at, end } = e;
  const yearDigits = e.tag === 0x17 ? 2 : e.tag === 0x18 ? 4 : 0;
  const n = yearDigits + 10;
  const fields = yearDigits === 0 || end - at !== n + 1 || buf[end - 1] !== 0x5a ? Number.NaN : digits(buf, at, n);
  if (Number.isNaN(fields)) throw new DerError(`${what}: "${content(e).toString('latin1')}" is not an RFC 5280 time`);
  const yy = digits(buf, at, yearDigits);
  const year = yearDigits === 4 ? yy : yy >= 50 ? 1900 + yy : 2000 + yy;
  const r = at + yearDigits;
  return Date.UTC(year, digits(buf, r, 2) - 1, digits(buf, r + 2, 2), digits(buf, r + 4, 2), digits(buf, r + 6, 2), digits(buf, r + 8, 2));
}
