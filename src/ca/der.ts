/**
 * A small DER encoder (ITU-T X.690 §8 and §10) for exactly what our certificates need.
 *
 * Why our own and not forge.asn1: building a leaf with forge costs about 50 µs of ASN.1
 * object churn, half the whole budget of an EC P-256 issuance
 * (key generation + signature ≈ 90 µs here). These functions write Buffers directly.
 * forge.asn1 stays our parser (see x509-parse.ts), which also makes the validator an
 * independent reading of what this encoder wrote.
 */

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Tag, definite length in the shortest form (X.690 §10.1), content. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const len = content.length;
  let header: number;
  if (len < 0x80) header = 2;
  else if (len < 0x100) header = 3;
  else if (len < 0x10000) header = 4;
  else if (len < 0x1000000) header = 5;
  else throw new RangeError(`DER value too long (${len} bytes)`);
  const out = Buffer.allocUnsafe(header + len);
  out[0] = tag;
  if (header === 2) out[1] = len;
  else {
    out[1] = 0x80 | (header - 2);
    for (let i = header - 1, rest = len; i >= 2; i--, rest >>>= 8) out[i] = rest & 0xff;
  }
  out.set(content, header);
  return out;
}

export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(Tag.SEQUENCE, Buffer.concat(items));
}

/** SET OF in DER sorts its encodings (X.690 §11.6); our sets hold one element, sort anyway. */
export function set(...items: Buffer[]): Buffer {
  const sorted = items.length > 1 ? [...items].sort(Buffer.compare) : items;
  return tlv(Tag.SET, Buffer.concat(sorted));
}

/** [n] EXPLICIT: constructed context-specific tag around a complete encoding. */
export function explicit(n: number, content: Uint8Array): Buffer {
  return tlv(0xa0 | n, content);
}

/** [n] IMPLICIT over a primitive type (e.g. GeneralName uniformResourceIdentifier [6]). */
export function implicitPrimitive(n: number, content: Uint8Array): Buffer {
  return tlv(0x80 | n, content);
}

export const NULL = Buffer.from([Tag.NULL, 0x00]);
export const TRUE = Buffer.from([Tag.BOOLEAN, 0x01, 0xff]);

/**
 * INTEGER from the big-endian magnitude of a non-negative number: leading zero octets
 * dropped, one 0x00 added when the top bit is set, so the value stays positive and the
 * encoding minimal (X.690 §8.3.2): the rule forge's serialNumber ignores.
 */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  return tlv(Tag.INTEGER, unsignedIntegerContent(magnitude));
}

export function unsignedIntegerContent(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = Buffer.from(magnitude.subarray(start));
  if (trimmed.length === 0) return Buffer.from([0]);
  return (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
}

export function smallInteger(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new RangeError(`not a small non-negative integer: ${n}`);
  const bytes: number[] = [];
  let rest = n;
  do { bytes.unshift(rest & 0xff); rest >>>= 8; } while (rest > 0);
  return unsignedInteger(Uint8Array.from(bytes));
}

const oidCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER (X.690 §8.19), cached: a certificate uses the same dozen OIDs. */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new Error(`invalid OID ${dotted}`);
    return Number(a);
  });
  if (arcs.length < 2 || arcs[0]! > 2) throw new Error(`invalid OID ${dotted}`);
  const bytes: number[] = [];
  const push = (value: number): void => {
    const chunk: number[] = [value & 0x7f];
    for (let v = Math.floor(value / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    bytes.push(...chunk);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) push(arc);
  const encoded = tlv(Tag.OID, Uint8Array.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

export function octetString(content: Uint8Array): Buffer {
  return tlv(Tag.OCTET_STRING, content);
}

/** BIT STRING holding whole octets (keys, signatures): zero unused bits. */
export function bitString(content: Uint8Array): Buffer {
  const inner = Buffer.allocUnsafe(content.length + 1);
  inner[0] = 0;
  inner.set(content, 1);
  return tlv(Tag.BIT_STRING, inner);
}

/**
 * A named-bit BIT STRING such as KeyUsage: DER drops trailing zero bits and counts them
 * as unused (X.690 §11.2.2), so digitalSignature alone is 03 02 07 80.
 */
export function namedBits(bits: number[]): Buffer {
  if (bits.length === 0) return Buffer.from([Tag.BIT_STRING, 0x01, 0x00]);
  const highest = Math.max(...bits);
  const octets = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of bits) octets[b >> 3]! |= 0x80 >> (b & 7);
  const unused = 7 - (highest & 7);
  return tlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([unused]), octets]));
}

export function utf8String(text: string): Buffer {
  return tlv(Tag.UTF8_STRING, Buffer.from(text, 'utf8'));
}

export function printableString(text: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) throw new Error(`not a PrintableString: ${JSON.stringify(text)}`);
  return tlv(Tag.PRINTABLE_STRING, Buffer.from(text, 'latin1'));
}

/** The octets of an IA5String, for use under an IMPLICIT tag (GeneralName uses [2] and [6]). */
export function ia5Bytes(text: string): Buffer {
  // eslint-disable-next-line no-control-regex
  if (!/^[\x00-\x7f]*$/.test(text)) throw new Error(`not an IA5String: ${JSON.stringify(text)}`);
  return Buffer.from(text, 'latin1');
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/**
 * RFC 5280 §4.1.2.5: UTCTime (YYMMDDHHMMSSZ) through 2049, GeneralizedTime
 * (YYYYMMDDHHMMSSZ) from 2050; seconds always present, no fractions, always Zulu.
 */
export function time(ms: number): Buffer {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  const rest = pad(d.getUTCMonth() + 1, 2) + pad(d.getUTCDate(), 2) + pad(d.getUTCHours(), 2)
    + pad(d.getUTCMinutes(), 2) + pad(d.getUTCSeconds(), 2) + 'Z';
  if (year >= 1950 && year < 2050) return tlv(Tag.UTC_TIME, Buffer.from(pad(year % 100, 2) + rest, 'latin1'));
  if (year < 0 || year > 9999) throw new RangeError(`time out of range for X.509: ${d.toISOString()}`);
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(pad(year, 4) + rest, 'latin1'));
}

/** The header of the element at `offset`: just enough to slice known structures (SPKI, CSR info). */
export interface Header { tag: number; headerLength: number; length: number; end: number }

export function readHeader(buf: Uint8Array, offset: number): Header {
  if (offset + 2 > buf.length) throw new Error('truncated DER');
  const tag = buf[offset]!;
  const first = buf[offset + 1]!;
  let length: number;
  let headerLength: number;
  if (first < 0x80) {
    length = first;
    headerLength = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0 || n > 3) throw new Error('unsupported DER length form');
    if (offset + 2 + n > buf.length) throw new Error('truncated DER');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[offset + 2 + i]!;
    headerLength = 2 + n;
  }
  const end = offset + headerLength + length;
  if (end > buf.length) throw new Error('truncated DER');
  return { tag, headerLength, length, end };
}
