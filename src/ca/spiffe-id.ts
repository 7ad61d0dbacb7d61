/**
 * SPIFFE IDs per the SPIFFE ID standard (spiffe/spiffe standards/SPIFFE-ID.md):
 * `spiffe://<trust-domain>[/<path>]`. Every rejection names the rule it broke.
 *
 * Like go-spiffe, we do not fold case: a valid trust domain is already lowercase, and the
 * scheme must be written `spiffe` (the spec calls both case-insensitive for comparison,
 * but a valid ID is in canonical form).
 */

export type SpiffeIdRule =
  | 'empty'
  | 'too-long'
  | 'scheme'
  | 'query'
  | 'fragment'
  | 'percent-encoding'
  | 'trust-domain-missing'
  | 'trust-domain-userinfo'
  | 'trust-domain-port'
  | 'trust-domain-uppercase'
  | 'trust-domain-charset'
  | 'trust-domain-too-long'
  | 'path-empty-segment'
  | 'path-dot-segment'
  | 'path-trailing-slash'
  | 'path-charset'
  | 'not-workload-id';

export class SpiffeIdError extends Error {
  constructor(readonly rule: SpiffeIdRule, message: string) {
    super(message);
    this.name = 'SpiffeIdError';
  }
}

export interface SpiffeId {
  readonly trustDomain: string;
  /** '' for a trust-domain ("root") ID, else '/seg/seg...'. */
  readonly path: string;
  /** The canonical string form. */
  readonly id: string;
}

export interface WorkloadId extends SpiffeId {
  readonly namespace: string;
  readonly serviceAccount: string;
}

const SCHEME = 'spiffe://';
/** SPIFFE-ID.md §2.3: implementations MUST support 2048 bytes and SHOULD NOT generate longer. */
export const MAX_SPIFFE_ID_BYTES = 2048;
/** SPIFFE-ID.md §2.1: the trust domain is an RFC 3986 host, at most 255 bytes. */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const TD_CHAR = /^[a-z0-9._-]$/;
const PATH_CHAR = /^[a-zA-Z0-9._-]$/;

function show(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

function fail(rule: SpiffeIdRule, input: string, why: string): never {
  throw new SpiffeIdError(rule, `invalid SPIFFE ID ${show(input)}: ${why}`);
}

const VALID_TD = /^[a-z0-9._-]+$/;
const VALID_SEGMENT = /^[a-zA-Z0-9._-]+$/;

/** Checks a trust domain name (SPIFFE-ID.md §2.1); `input` is what to quote in the error. */
export function checkTrustDomain(td: string, input: string = td): void {
  // One regex for the common, valid case; the rule-by-rule walk below only names the failure.
  if (VALID_TD.test(td) && td.length <= MAX_TRUST_DOMAIN_BYTES) return;
  if (td === '') fail('trust-domain-missing', input, 'the trust domain is empty');
  if (td.includes('@')) fail('trust-domain-userinfo', input, 'the trust domain must not contain userinfo ("user@")');
  if (td.includes(':')) fail('trust-domain-port', input, 'the trust domain must not contain a port (or an IPv6 address)');
  if (td.includes('%')) fail('percent-encoding', input, 'percent-encoding is not allowed in the trust domain');
  if (Buffer.byteLength(td) > MAX_TRUST_DOMAIN_BYTES) {
    fail('trust-domain-too-long', input, `the trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`);
  }
  for (const ch of td) {
    if (TD_CHAR.test(ch)) continue;
    if (ch !== ch.toLowerCase()) fail('trust-domain-uppercase', input, `the trust domain must be lowercase (found ${JSON.stringify(ch)})`);
    fail('trust-domain-charset', input, `the trust domain may only contain a-z 0-9 . - _ (found ${JSON.stringify(ch)})`);
  }
}

/** Checks one path segment (SPIFFE-ID.md §2.2). */
export function checkPathSegment(segment: string, input: string = segment): void {
  if (VALID_SEGMENT.test(segment) && segment !== '.' && segment !== '..') return;
  if (segment === '') fail('path-empty-segment', input, 'the path has an empty segment');
  if (segment === '.' || segment === '..') fail('path-dot-segment', input, `the path must not contain a "${segment}" segment`);
  for (const ch of segment) {
    if (PATH_CHAR.test(ch)) continue;
    if (ch === '%') fail('percent-encoding', input, 'percent-encoding is not allowed in the path');
    fail('path-charset', input, `path segment ${show(segment)} may only contain a-z A-Z 0-9 . - _ (found ${JSON.stringify(ch)})`);
  }
}

/**
 * The whole grammar of a valid ID in one expression (trust domain, then segments of the
 * path alphabet), for the common case: every issuance and every validation parses one. Dot
 * segments and the length limits are checked after it; anything it rejects takes the
 * rule-by-rule walk below, which names what is wrong. ASCII only, so length is bytes.
 */
const VALID_ID = /^spiffe:\/\/([a-z0-9._-]+)((?:\/[a-zA-Z0-9._-]+)*)$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;

/** Parses and validates; throws SpiffeIdError naming the broken rule. */
export function parseSpiffeId(input: string): SpiffeId {
  const m = input.length <= MAX_SPIFFE_ID_BYTES ? VALID_ID.exec(input) : null;
  if (m && m[1]!.length <= MAX_TRUST_DOMAIN_BYTES && !DOT_SEGMENT.test(m[2]!)) return { trustDomain: m[1]!, path: m[2]!, id: input };
  if (input === '') fail('empty', input, 'the ID is empty');
  if (Buffer.byteLength(input) > MAX_SPIFFE_ID_BYTES) {
    fail('too-long', input, `the ID is ${Buffer.byteLength(input)} bytes, above the ${MAX_SPIFFE_ID_BYTES}-byte limit`);
  }
  if (!input.startsWith(SCHEME)) {
    const why = input.toLowerCase().startsWith(SCHEME)
      ? 'the scheme must be written "spiffe" in lowercase'
      : 'the scheme must be "spiffe" followed by "://"';
    fail('scheme', input, why);
  }
  const rest = input.slice(SCHEME.length);
  if (rest.includes('#')) fail('fragment', input, 'a SPIFFE ID must not have a fragment ("#...")');
  if (rest.includes('?')) fail('query', input, 'a SPIFFE ID must not have a query ("?...")');
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  checkTrustDomain(trustDomain, input);
  if (path !== '') {
    if (path.endsWith('/')) {
      if (path === '/') fail('path-trailing-slash', input, 'the path must not be a lone "/" (write the ID without it)');
      fail('path-trailing-slash', input, 'the path must not end with "/"');
    }
    for (const segment of path.slice(1).split('/')) checkPathSegment(segment, input);
  }
  return { trustDomain, path, id: input };
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: SpiffeIdError };

export function tryParseSpiffeId(input: string): ParseResult<SpiffeId> {
  try {
    return { ok: true, value: parseSpiffeId(input) };
  } catch (e) {
    if (e instanceof SpiffeIdError) return { ok: false, error: e };
    throw e;
  }
}

/** spiffe://<td>/<seg>/<seg>...; every part checked. */
export function buildSpiffeId(trustDomain: string, ...segments: string[]): string {
  checkTrustDomain(trustDomain, `${SCHEME}${trustDomain}`);
  for (const s of segments) checkPathSegment(s, `${SCHEME}${trustDomain}/${segments.join('/')}`);
  const id = segments.length === 0 ? `${SCHEME}${trustDomain}` : `${SCHEME}${trustDomain}/${segments.join('/')}`;
  return parseSpiffeId(id).id; // also enforces the overall length limit
}

/** The trust domain's own ID, carried by its signing certificates: spiffe://<td>. */
export function trustDomainId(trustDomain: string): string {
  return buildSpiffeId(trustDomain);
}

/** Istio's workload identity: spiffe://<td>/ns/<namespace>/sa/<service-account>. */
export function workloadId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return buildSpiffeId(trustDomain, 'ns', namespace, 'sa', serviceAccount);
}

/** Parses an Istio workload identity; anything else (root ID, other path shape) is rejected. */
export function parseWorkloadId(input: string): WorkloadId {
  const id = parseSpiffeId(input);
  const parts = id.path.split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') {
    fail('not-workload-id', input, 'not a workload identity of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>');
  }
  return { ...id, namespace: parts[2]!, serviceAccount: parts[4]! };
}
