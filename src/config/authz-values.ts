/**
 * The value checks Istio runs on AuthorizationPolicy fields (pkg/config/security/security.go:
 * CheckEmptyValues, CheckWildcardValues, CheckTrustDomainValues, CheckServiceAccount,
 * CheckValidPathTemplate, ValidateIPs, ValidatePorts, ValidateAttribute), with Istio's wording.
 * Each returns the problems of one list, one message per bad value where Istio would join them
 * into a multierror, so every message can point at its own line.
 */
import { parseIp, parsePrefix } from '../common/ip.js';

/** A problem with the value at `index` of the list (or with the list as a whole when undefined). */
export interface ValueProblem {
  index?: number;
  message: string;
}

export function checkEmptyValues(key: string, values: readonly string[]): ValueProblem[] {
  const i = values.indexOf('');
  return i < 0 ? [] : [{ index: i, message: `empty value not allowed, found in ${key}` }];
}

/** Exact, prefix `foo*`, suffix `*foo` or presence `*`: at most one `*`, at either end. */
function checkWildcardValues(key: string, values: readonly string[]): ValueProblem[] {
  const empty = checkEmptyValues(key, values);
  if (empty.length > 0) return empty;
  for (const [i, v] of values.entries()) {
    const stars = v.split('*').length - 1;
    if (stars > 1) return [{ index: i, message: `at most one wildcard is allowed, found in ${key}: ${JSON.stringify(v)}` }];
    if (stars === 1 && v !== '*' && !v.startsWith('*') && !v.endsWith('*')) {
      return [{ index: i, message: `wildcard is only allowed at the start or end, found in ${key}: ${JSON.stringify(v)}` }];
    }
  }
  return [];
}

export function checkTrustDomainValues(key: string, values: readonly string[]): ValueProblem[] {
  const wild = checkWildcardValues(key, values);
  if (wild.length > 0) return wild;
  const i = values.findIndex((v) => v.includes('/'));
  return i < 0 ? [] : [{ index: i, message: `trust domain must not contain '/', found in ${key}: ${JSON.stringify(values[i])}` }];
}

/** `serviceAccount` or `namespace/serviceAccount`, no wildcard, at most 16 values of at most 320 characters. */
export function checkServiceAccount(key: string, values: readonly string[]): ValueProblem[] {
  if (values.length > 16) return [{ message: 'may not have more than 16 values' }];
  const format = "expected format 'serviceAccount' or 'namespace/serviceAccount'";
  for (const [i, v] of values.entries()) {
    const fail = (message: string): ValueProblem[] => [{ index: i, message }];
    if (v === '') return fail(`empty value not allowed, found in ${key}`);
    if (v.includes('*')) return fail(`wildcard not allowed, found in ${key}`);
    const slashes = v.split('/').length - 1;
    if (slashes > 1) return fail(`${format}, found ${JSON.stringify(v)} in ${key}`);
    if (v.length > 320) return fail(`value cannot exceed 320 characters, found ${JSON.stringify(v)} in ${key}`);
    if (slashes === 1) {
      const [ns, sa] = v.split('/') as [string, string];
      if (ns === '') return fail(`${format}, found empty namespace ${JSON.stringify(v)} in ${key}`);
      if (sa === '') return fail(`${format}, found empty serviceAccount ${JSON.stringify(v)} in ${key}`);
    }
  }
  return [];
}

const MATCH_ONE_TEMPLATE = '{*}';
const MATCH_ANY_TEMPLATE = '{**}';
/** RFC 3986 pchar, the literals Envoy's URI templates accept. */
const VALID_LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

function containsPathTemplate(path: string): boolean {
  return path.includes(MATCH_ONE_TEMPLATE) || path.includes(MATCH_ANY_TEMPLATE);
}

/** `{*}` matches one segment, `{**}` any number and must be the last operator; no other braces. */
export function checkValidPathTemplate(key: string, paths: readonly string[]): ValueProblem[] {
  for (const [i, original] of paths.entries()) {
    const template = containsPathTemplate(original);
    const path = original.replace(/^\/+|\/+$/g, '');
    let sawAny = false;
    for (const glob of path.split('/')) {
      const isOperator = glob === MATCH_ONE_TEMPLATE || glob === MATCH_ANY_TEMPLATE;
      if (isOperator && !sawAny) {
        sawAny = glob === MATCH_ANY_TEMPLATE;
        continue;
      }
      if (isOperator) return [{ index: i, message: `invalid or unsupported path ${path}, found in ${key}. {**} is not the last operator` }];
      if (/[{}]/.test(glob)) {
        return [{ index: i, message: `invalid or unsupported path ${path}, found in ${key}. Contains '{' or '}' beyond a supported path template` }];
      }
      if (template && !VALID_LITERAL.test(glob)) {
        return [{ index: i, message: `invalid or unsupported path ${path}, found in ${key}. Contains segment ${glob} with invalid string literal` }];
      }
    }
  }
  return [];
}

/** Single addresses or CIDR blocks, parsed as Go's net/netip does. */
export function validateIps(values: readonly string[]): ValueProblem[] {
  const out: ValueProblem[] = [];
  values.forEach((v, index) => {
    if (v.includes('/')) {
      const p = parsePrefix(v);
      if (!p.ok) out.push({ index, message: `bad CIDR range (${v}): ${p.error}` });
    } else if (!parseIp(v).ok) {
      out.push({ index, message: `bad IP address (${v})` });
    }
  });
  return out;
}

/**
 * Decimal ports up to 65535. Istio formats Go's strconv.ParseUint error into the message, which
 * is `<nil>` for a number that fits 32 bits but exceeds 65535.
 */
export function validatePorts(values: readonly string[]): ValueProblem[] {
  const out: ValueProblem[] = [];
  values.forEach((v, index) => {
    let err: string | undefined = '<nil>';
    if (!/^\d+$/.test(v)) err = `strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax`;
    else if (BigInt(v) > 0xffffffffn) err = `strconv.ParseUint: parsing ${JSON.stringify(v)}: value out of range`;
    else if (Number(v) <= 65535) err = undefined;
    if (err !== undefined) out.push({ index, message: `bad port (${v}): ${err}` });
  });
  return out;
}

/** A key of the form `a[b]`, e.g. `request.headers[x-user]`. */
function mapKeyError(key: string): string | undefined {
  const open = key.indexOf('[');
  if (key.endsWith(']') && open > 0 && open < key.length - 2) return undefined;
  return `bad key (${key}): should have format a[b]`;
}

/** The `when` condition keys Istio knows; Istio's ValidateAttribute for each. */
export function validateAttribute(key: string, values: readonly string[]): ValueProblem[] {
  const empty = checkEmptyValues(key, values);
  if (empty.length > 0) return empty;
  const whole = (message: string | undefined): ValueProblem[] => (message === undefined ? [] : [{ message }]);
  if (key.startsWith('request.headers')) return whole(mapKeyError(key));
  switch (key) {
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      return validateIps(values);
    case 'source.serviceAccount':
      return checkServiceAccount(key, values);
    case 'source.trustDomain':
      return checkWildcardValues(key, values);
    case 'destination.port':
      return validatePorts(values);
    case 'source.namespace':
    case 'source.principal':
    case 'request.auth.principal':
    case 'request.auth.audiences':
    case 'request.auth.presenter':
    case 'connection.sni':
      return [];
    case 'destination.namespace':
      return whole(`attribute ${key} is replaced by the metadata.namespace`);
    case 'destination.name':
    case 'destination.user':
      return whole(`deprecated attribute ${key}: only supported in v1alpha1`);
  }
  if (key.startsWith('request.auth.claims') || key.startsWith('experimental.envoy.filters.')) return whole(mapKeyError(key));
  if (key.startsWith('destination.labels')) return whole(`attribute ${key} is replaced by the workload selector`);
  return whole(`unknown attribute: ${key}`);
}
