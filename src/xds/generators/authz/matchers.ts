/**
 * Istio's string, header, path and metadata matchers for authorization
 * (pilot/pkg/security/authz/matcher/{string,header,metadata,template}.go). Every policy string
 * supports exact `abc`, prefix `abc*`, suffix `*abc` and presence `*`; presence becomes a
 * regex `.+` (or present_match for headers) because Envoy rejects an empty prefix or suffix.
 */
import type { HeaderMatcher, MetadataMatcher, PathMatcher, StringMatcher, ValueMatcher } from './rbac-types.js';

/** Go's regexp.QuoteMeta: escape every RE2 metacharacter. */
export function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

export const regexMatcher = (regex: string): StringMatcher => ({ safe_regex: { regex } });
const exact = (v: string, ignoreCase = false): StringMatcher => (ignoreCase ? { exact: v, ignore_case: true } : { exact: v });
const prefix = (v: string, ignoreCase = false): StringMatcher => (ignoreCase ? { prefix: v, ignore_case: true } : { prefix: v });
const suffix = (v: string, ignoreCase = false): StringMatcher => (ignoreCase ? { suffix: v, ignore_case: true } : { suffix: v });
export { exact as exactMatcher, prefix as prefixMatcher, suffix as suffixMatcher };

/**
 * StringMatcherWithPrefix: `v` with `pre` put in front (the prefix is dropped for `*`); a suffix
 * match with a prefix in front becomes a regex.
 */
export function stringMatcherWithPrefix(v: string, pre: string): StringMatcher {
  if (v === '*') return regexMatcher('.+');
  if (v.startsWith('*')) return pre === '' ? suffix(v.slice(1)) : regexMatcher(`${pre}.*${quoteMeta(v.slice(1))}`);
  if (v.endsWith('*')) return prefix(pre + v.slice(0, -1));
  return exact(pre + v);
}

export function stringMatcher(v: string): StringMatcher {
  return stringMatcherWithPrefix(v, '');
}

function headerWith(name: string, v: string, ignoreCase: boolean): HeaderMatcher {
  if (v === '*') return { name, present_match: true };
  if (v.startsWith('*')) return { name, string_match: suffix(v.slice(1), ignoreCase) };
  if (v.endsWith('*')) return { name, string_match: prefix(v.slice(0, -1), ignoreCase) };
  return { name, string_match: exact(v, ignoreCase) };
}

/** HeaderMatcher for `request.headers[name]` and `:method`. */
export function headerMatcher(name: string, v: string): HeaderMatcher {
  return headerWith(name, v, false);
}

/** HostMatcher: the `:authority` header, case-insensitive. */
export function hostMatcher(name: string, v: string): HeaderMatcher {
  return headerWith(name, v, true);
}

export function pathMatcher(path: string): PathMatcher {
  return { path: stringMatcher(path) };
}

/** sanitizePathTemplate: Istio's `{*}` and `{**}` are Envoy URI template's `*` and `**`. */
export function uriTemplate(path: string): string {
  return path.replaceAll('{**}', '**').replaceAll('{*}', '*');
}

/** OrMatcher: a single matcher stands alone (Envoy's OrMatcher needs two or more). */
export function orMatcher(matchers: ValueMatcher[]): ValueMatcher {
  return matchers.length === 1 ? matchers[0]! : { or_match: { value_matchers: matchers } };
}

export function stringOrMatcher(values: readonly string[]): ValueMatcher {
  return orMatcher(values.map((v) => ({ string_match: stringMatcher(v) })));
}

export function metadataValueMatcher(filter: string, key: string, value: ValueMatcher): MetadataMatcher {
  return { filter, path: [{ key }], value };
}

/**
 * MetadataListValueMatcher with useExtendedJwt: the value may be a list holding a match or a
 * single matching value (a JWT claim can be either).
 */
export function metadataListOrValueMatcher(filter: string, keys: readonly string[], value: ValueMatcher): MetadataMatcher {
  return {
    filter,
    path: keys.map((key) => ({ key })),
    value: { or_match: { value_matchers: [{ list_match: { one_of: value } }, value] } },
  };
}
