/**
 * IP addresses and prefixes with Go's net/netip rules and wording, because Istio validates
 * and prints them with net/netip (pkg/config/security ValidateIPs, pilot/pkg/networking/util
 * AddrStrToCidrRange): ParseAddr / ParsePrefix accept the same strings here and fail with the
 * same text, and formatIp prints an address as Addr.String() does (RFC 5952 for IPv6,
 * `::ffff:a.b.c.d` for IPv4-mapped ones). Pure.
 */

export interface IpAddress {
  /** 4 bytes for IPv4, 16 for IPv6 (IPv4-mapped IPv6 stays 16 bytes, as in netip). */
  bytes: readonly number[];
  zone?: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export interface IpPrefix {
  address: IpAddress;
  bits: number;
}

const q = (s: string): string => JSON.stringify(s);

function addrError(input: string, msg: string, at?: string): Parsed<never> {
  return { ok: false, error: `ParseAddr(${q(input)}): ${msg}${at !== undefined && at !== '' ? ` (at ${q(at)})` : ''}` };
}

/** Dotted quad, no leading zeros, as netip's parseIPv4Fields; `out` gets 4 bytes. */
function parseV4Fields(input: string, s: string, out: number[]): Parsed<never> | undefined {
  let val = 0;
  let pos = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c >= '0' && c <= '9') {
      if (digits === 1 && val === 0) return addrError(input, 'IPv4 field has octet with leading zero');
      val = val * 10 + (c.charCodeAt(0) - 48);
      digits++;
      if (val > 255) return addrError(input, 'IPv4 field has value >255');
    } else if (c === '.') {
      if (i === 0 || i === s.length - 1 || s[i - 1] === '.') return addrError(input, 'IPv4 field must have at least one digit', s.slice(i));
      if (pos === 3) return addrError(input, 'IPv4 address too long');
      out[pos++] = val;
      val = 0;
      digits = 0;
    } else {
      return addrError(input, 'unexpected character', s.slice(i));
    }
  }
  if (pos < 3) return addrError(input, 'IPv4 address too short');
  out[3] = val;
  return undefined;
}

function hexValue(c: string): number {
  if (c >= '0' && c <= '9') return c.charCodeAt(0) - 48;
  if (c >= 'a' && c <= 'f') return c.charCodeAt(0) - 87;
  if (c >= 'A' && c <= 'F') return c.charCodeAt(0) - 55;
  return -1;
}

function parseV6(input: string): Parsed<IpAddress> {
  let s = input;
  let zone: string | undefined;
  const pct = s.indexOf('%');
  if (pct >= 0) {
    zone = s.slice(pct + 1);
    s = s.slice(0, pct);
    if (zone === '') return addrError(input, 'zone must be a non-empty string');
  }
  const ip = new Array<number>(16).fill(0);
  let ellipsis = -1;
  if (s.startsWith('::')) {
    ellipsis = 0;
    s = s.slice(2);
    if (s === '') return { ok: true, value: zone === undefined ? { bytes: ip } : { bytes: ip, zone } };
  }
  let i = 0;
  while (i < 16) {
    let off = 0;
    let acc = 0;
    for (; off < s.length; off++) {
      const h = hexValue(s[off]!);
      if (h < 0) break;
      acc = acc * 16 + h;
      if (off > 3) return addrError(input, 'each group must have 4 or less digits', s);
      if (acc > 0xffff) return addrError(input, 'IPv6 field has value >=2^16', s);
    }
    if (off === 0) return addrError(input, 'each colon-separated field must have at least one digit', s);
    if (off < s.length && s[off] === '.') {
      if (ellipsis < 0 && i !== 12) return addrError(input, 'embedded IPv4 address must replace the final 2 fields of the address', s);
      if (i + 4 > 16) return addrError(input, 'too many hex fields to fit an embedded IPv4 at the end of the address', s);
      const v4: number[] = [];
      const err = parseV4Fields(input, s, v4);
      if (err) return err;
      ip.splice(i, 4, ...v4);
      s = '';
      i += 4;
      break;
    }
    ip[i] = acc >> 8;
    ip[i + 1] = acc & 0xff;
    i += 2;
    s = s.slice(off);
    if (s === '') break;
    if (s[0] !== ':') return addrError(input, 'unexpected character, want colon', s);
    if (s.length === 1) return addrError(input, 'colon must be followed by more characters', s);
    s = s.slice(1);
    if (s[0] === ':') {
      if (ellipsis >= 0) return addrError(input, 'multiple :: in address', s);
      ellipsis = i;
      s = s.slice(1);
      if (s === '') break;
    }
  }
  if (s !== '') return addrError(input, 'trailing garbage after address', s);
  if (i < 16) {
    if (ellipsis < 0) return addrError(input, 'address string too short');
    const n = 16 - i;
    for (let j = i - 1; j >= ellipsis; j--) ip[j + n] = ip[j]!;
    for (let j = ellipsis; j < ellipsis + n; j++) ip[j] = 0;
  } else if (ellipsis >= 0) {
    return addrError(input, 'the :: must expand to at least one field of zeros');
  }
  return { ok: true, value: zone === undefined ? { bytes: ip } : { bytes: ip, zone } };
}

/** netip.ParseAddr. */
export function parseIp(input: string): Parsed<IpAddress> {
  for (const c of input) {
    if (c === '.') {
      const out: number[] = [];
      return parseV4Fields(input, input, out) ?? { ok: true, value: { bytes: out } };
    }
    if (c === ':') return parseV6(input);
    if (c === '%') return addrError(input, 'missing IPv6 address');
  }
  return addrError(input, 'unable to parse IP');
}

/** netip.ParsePrefix: an address, a slash, decimal bits without sign or leading zero; no zone. */
export function parsePrefix(input: string): Parsed<IpPrefix> {
  const fail = (msg: string): Parsed<never> => ({ ok: false, error: `netip.ParsePrefix(${q(input)}): ${msg}` });
  const slash = input.lastIndexOf('/');
  if (slash < 0) return fail("no '/'");
  const addr = parseIp(input.slice(0, slash));
  if (!addr.ok) return fail(addr.error);
  if (addr.value.bytes.length === 16 && addr.value.zone !== undefined) return fail('IPv6 zones cannot be present in a prefix');
  const bitsText = input.slice(slash + 1);
  if ((bitsText.length > 1 && !(bitsText[0]! >= '1' && bitsText[0]! <= '9')) || !/^\d+$/.test(bitsText)) {
    return fail(`bad bits after slash: ${q(bitsText)}`);
  }
  const bits = Number(bitsText);
  if (bits > addr.value.bytes.length * 8) return fail('prefix length out of range');
  return { ok: true, value: { address: addr.value, bits } };
}

/**
 * Istio's AddrStrToPrefix: a CIDR as written, or a single address as a /32 or /128. The zone
 * of a single address is dropped, as netip.PrefixFrom drops it.
 */
export function parseIpBlock(input: string): Parsed<IpPrefix> {
  if (input === '') return { ok: false, error: 'empty address' };
  if (input.includes('/')) return parsePrefix(input);
  const addr = parseIp(input);
  if (!addr.ok) return addr;
  return { ok: true, value: { address: { bytes: addr.value.bytes }, bits: addr.value.bytes.length * 8 } };
}

function isV4Mapped(b: readonly number[]): boolean {
  return b.length === 16 && b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
}

/** netip.Addr.String(). */
export function formatIp(a: IpAddress): string {
  const b = a.bytes;
  const zone = a.zone !== undefined ? `%${a.zone}` : '';
  if (b.length === 4) return b.join('.');
  if (isV4Mapped(b)) return `::ffff:${b.slice(12).join('.')}${zone}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // The first longest run of two or more zero groups becomes "::" (RFC 5952 section 4.2).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (g: number): string => g.toString(16);
  if (bestStart < 0) return groups.map(hex).join(':') + zone;
  const head = groups.slice(0, bestStart).map(hex).join(':');
  const tail = groups.slice(bestStart + bestLen).map(hex).join(':');
  return `${head}::${tail}${zone}`;
}

/**
 * Whether `addr` is inside the prefix: same family and equal leading `bits` bits (Envoy's
 * Network::Address::CidrRange::isInRange; a prefix of length 0 holds every address of its
 * family).
 */
export function prefixContains(prefix: IpPrefix, addr: IpAddress): boolean {
  const p = prefix.address.bytes;
  const a = addr.bytes;
  if (p.length !== a.length || prefix.bits > p.length * 8) return false;
  let bits = prefix.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((p[i]! & mask) !== (a[i]! & mask)) return false;
  }
  return true;
}
