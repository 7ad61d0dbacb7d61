/**
 * Envoy's matchers as the RBAC filter evaluates them, over plain request facts:
 * - StringMatcher (source/common/common/matchers.cc): exact, prefix, suffix, contains, safe_regex
 *   (RE2, full match), ignore_case for all but regex;
 * - HeaderMatcher (source/common/http/header_utility.cc matchHeaders): several values of one
 *   header are joined with ","; a missing header matches only `present_match: false` (or, inverted,
 *   `present_match: true`), unless treat_missing_header_as_empty;
 * - PathMatcher: the :path without query and fragment;
 * - MetadataMatcher / ValueMatcher over dynamic metadata (source/common/common/matchers.cc);
 * - CidrRange (source/common/network/cidr_range.cc isInRange);
 * - the URI template path matcher (source/extensions/path/uri_template_lib).
 *
 * Anything Envoy supports that is not implemented here throws UnsupportedMatcher, so a verdict
 * is never guessed. Pure.
 */
import { parseIp, prefixContains, type IpAddress } from '../common/ip.js';
import type { CidrRange, HeaderMatcher, MetadataMatcher, StringMatcher, ValueMatcher } from '../xds/generators/authz/rbac-types.js';

export class UnsupportedMatcher extends Error {
  override readonly name = 'UnsupportedMatcher';
}

const regexCache = new Map<string, RegExp>();

/** An RE2 pattern as a JS RegExp anchored for a full match; RE2 syntax JS lacks is refused. */
function fullMatchRegex(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    if (/\(\?[a-zA-Z]/.test(pattern.replace(/\(\?P</g, '(?<'))) throw new UnsupportedMatcher(`regex flags are not supported: ${pattern}`);
    try {
      re = new RegExp(`^(?:${pattern.replace(/\(\?P</g, '(?<')})$`);
    } catch (err) {
      throw new UnsupportedMatcher(`regex ${JSON.stringify(pattern)} is not understood: ${(err as Error).message}`);
    }
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

export function matchString(m: StringMatcher, value: string): boolean {
  const lower = m.ignore_case === true;
  const v = lower ? value.toLowerCase() : value;
  const norm = (s: string): string => (lower ? s.toLowerCase() : s);
  if ('exact' in m) return v === norm(m.exact);
  if ('prefix' in m) return v.startsWith(norm(m.prefix));
  if ('suffix' in m) return v.endsWith(norm(m.suffix));
  if ('contains' in m) return v.includes(norm(m.contains));
  if ('safe_regex' in m) return fullMatchRegex(m.safe_regex.regex).test(value);
  throw new UnsupportedMatcher(`string matcher ${JSON.stringify(m)} is not supported`);
}

/** Request headers by lower-case name; Envoy keeps every value of a repeated header. */
export type HeaderMap = ReadonlyMap<string, readonly string[]>;

export function matchHeader(m: HeaderMatcher, headers: HeaderMap): boolean {
  const values = headers.get(m.name.toLowerCase());
  const invert = m.invert_match === true;
  const present = 'present_match' in m ? m.present_match : undefined;
  if (values === undefined && m.treat_missing_header_as_empty !== true) {
    // Only a presence matcher can match an absent header.
    return invert ? present === true : present === false;
  }
  const value = values === undefined ? '' : values.join(',');
  let match: boolean;
  if ('string_match' in m) match = matchString(m.string_match, value);
  else if ('exact_match' in m) match = m.exact_match === '' || value === m.exact_match;
  else if ('prefix_match' in m) match = value.startsWith(m.prefix_match);
  else if ('suffix_match' in m) match = value.endsWith(m.suffix_match);
  else if ('contains_match' in m) match = value.includes(m.contains_match);
  else if ('safe_regex_match' in m) match = fullMatchRegex(m.safe_regex_match.regex).test(value);
  else if ('range_match' in m) {
    const n = /^[+-]?\d+$/.test(value) ? Number(value) : Number.NaN;
    match = !Number.isNaN(n) && n >= Number(m.range_match.start) && n < Number(m.range_match.end);
  } else match = present ?? true; // no specifier: a presence match
  return match !== invert;
}

/** The path a PathMatcher sees: query and fragment removed (Http::PathUtil::removeQueryAndFragment). */
export function pathWithoutQuery(path: string): string {
  const cut = path.search(/[?#]/);
  return cut < 0 ? path : path.slice(0, cut);
}

export function matchCidr(range: CidrRange, address: IpAddress | undefined): boolean {
  if (address === undefined) return false;
  const prefix = parseIp(range.address_prefix);
  if (!prefix.ok) throw new UnsupportedMatcher(`CidrRange address_prefix ${JSON.stringify(range.address_prefix)}: ${prefix.error}`);
  return prefixContains({ address: prefix.value, bits: range.prefix_len?.value ?? 0 }, address);
}

/** A value in dynamic metadata: JSON as google.protobuf.Value holds it; undefined is "not set". */
function matchValue(m: ValueMatcher, value: unknown): boolean {
  if ('null_match' in m) return value === null;
  if ('string_match' in m) return typeof value === 'string' && matchString(m.string_match, value);
  if ('bool_match' in m) return typeof value === 'boolean' && value === m.bool_match;
  if ('present_match' in m) return m.present_match && value !== undefined;
  if ('double_match' in m) {
    if (typeof value !== 'number') return false;
    if (m.double_match.exact !== undefined) return value === m.double_match.exact;
    if (m.double_match.range !== undefined) return value >= m.double_match.range.start && value < m.double_match.range.end;
    return false;
  }
  if ('list_match' in m) return Array.isArray(value) && value.some((v) => matchValue(m.list_match.one_of, v));
  if ('or_match' in m) return m.or_match.value_matchers.some((vm) => matchValue(vm, value));
  throw new UnsupportedMatcher(`value matcher ${JSON.stringify(m)} is not supported`);
}

/** Dynamic metadata by filter name, each a JSON object (a google.protobuf.Struct). */
export type DynamicMetadata = Readonly<Record<string, unknown>>;

export function matchMetadata(m: MetadataMatcher, metadata: DynamicMetadata): boolean {
  let value: unknown = metadata[m.filter];
  for (const segment of m.path) {
    value = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[segment.key] : undefined;
  }
  return matchValue(m.value, value) !== (m.invert === true);
}

/** Envoy's URI template literal characters (RFC 3986 pchar without `*`). */
const LITERAL = "a-zA-Z0-9\\-._~%!$&'()+,;:@=";

/** A `/a/*\/b/**` style template (variables `{name}` and `{name=pattern}` too) as a regex source. */
function uriTemplatePattern(template: string): string {
  let out = '';
  for (let i = 0; i < template.length;) {
    if (template.startsWith('**', i)) { out += `[${LITERAL}/]*`; i += 2; continue; }
    if (template[i] === '*') { out += `[${LITERAL}]+`; i += 1; continue; }
    if (template[i] === '{') {
      const end = template.indexOf('}', i);
      if (end < 0) throw new UnsupportedMatcher(`unmatched variable bracket in ${JSON.stringify(template)}`);
      const eq = template.indexOf('=', i);
      out += `(?:${uriTemplatePattern(eq > i && eq < end ? template.slice(eq + 1, end) : '*')})`;
      i = end + 1;
      continue;
    }
    const c = template[i]!;
    out += '$()+.'.includes(c) ? `\\${c}` : c;
    i += 1;
  }
  return out;
}

export function matchUriTemplate(template: string, path: string): boolean {
  return new RegExp(`^(?:${uriTemplatePattern(template)})$`).test(pathWithoutQuery(path));
}
