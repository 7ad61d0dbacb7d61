/**
 * Envoy's RBAC filters evaluated over one request, as Envoy runs them
 * (source/extensions/filters/common/rbac/matchers.cc, engine_impl.cc;
 * source/extensions/filters/http/rbac/rbac_filter.cc, network/rbac/rbac_filter.cc):
 *
 * - a policy matches when some permission and some principal match; policies are tried in
 *   name order (Envoy keeps them in a std::map) and the first match is the effective policy;
 * - action ALLOW allows what matches, DENY denies what matches, LOG allows everything and marks
 *   matches for access logging;
 * - shadow rules are evaluated and reported but never enforced; a filter without rules allows;
 * - a chain of filters stops at the first that denies (HTTP 403 "RBAC: access denied", or the
 *   TCP connection closed);
 * - the network filter sees no HTTP headers: header and url_path matchers never match there.
 *
 * `meshd check` walks the generated filters with this instead of re-deriving policy. Pure.
 */
import { parseIp, type IpAddress } from '../common/ip.js';
import {
  UnsupportedMatcher, matchCidr, matchHeader, matchMetadata, matchString, matchUriTemplate, pathWithoutQuery,
  type DynamicMetadata, type HeaderMap,
} from './rbac-matchers.js';
import {
  HTTP_RBAC_TYPE, NETWORK_RBAC_TYPE, URI_TEMPLATE_MATCH_TYPE, type HttpRbac, type NetworkRbac, type Permission, type Policy,
  type Principal, type Rbac, type RbacAction,
} from '../xds/generators/authz/rbac-types.js';

export { UnsupportedMatcher };

export interface RbacRequest {
  /** The peer certificate's URI SAN (its SPIFFE ID) on an mTLS connection; absent for plaintext. */
  sourcePrincipal?: string;
  /** The peer certificate's subject, compared after the URI SAN (Envoy's AuthenticatedMatcher). */
  peerSubject?: string;
  /** The downstream direct remote address (`source.ip`, ipBlocks). */
  sourceIp: string;
  /** The original client address from X-Forwarded-For or PROXY protocol (`remote.ip`); defaults to sourceIp. */
  remoteIp?: string;
  /** The local address and port the connection arrived on. */
  destinationIp: string;
  destinationPort: number;
  /** TLS SNI; '' or absent when none. */
  sni?: string;
  /** For HTTP filters: the request after the connection manager normalized it. */
  http?: {
    method: string;
    /** :path including any query string. */
    path: string;
    /** :authority (the Host header). */
    host: string;
    headers?: Readonly<Record<string, string | readonly string[]>>;
  };
  dynamicMetadata?: DynamicMetadata;
  filterState?: Readonly<Record<string, string>>;
}

/** What one RBAC engine (rules or shadow_rules) decided. */
export interface EngineVerdict {
  action: RbacAction;
  /** Whether the engine lets the request through (LOG always does). */
  allowed: boolean;
  /** The first policy, in name order, that matched. */
  policy?: string;
}

export interface FilterVerdict {
  allowed: boolean;
  /** The enforced rules' verdict; absent when the filter has no rules (it then allows). */
  enforced?: EngineVerdict;
  shadow?: EngineVerdict;
}

export interface ChainVerdict {
  allowed: boolean;
  /** The filter (index in the chain) and policy that decided; absent when no filter restricted anything. */
  decidedBy?: { filter: number; action: RbacAction; policy?: string };
  /** The filters evaluated, in order; evaluation stops at the first denial. */
  filters: FilterVerdict[];
}

interface Facts {
  req: RbacRequest;
  source: IpAddress | undefined;
  remote: IpAddress | undefined;
  destination: IpAddress | undefined;
  headers: HeaderMap;
  path: string | undefined;
  metadata: DynamicMetadata;
}

function address(text: string | undefined): IpAddress | undefined {
  if (text === undefined) return undefined;
  const p = parseIp(text);
  return p.ok ? p.value : undefined;
}

function facts(req: RbacRequest, http: boolean): Facts {
  const headers = new Map<string, string[]>();
  if (http && req.http !== undefined) {
    for (const [k, v] of Object.entries(req.http.headers ?? {})) headers.set(k.toLowerCase(), typeof v === 'string' ? [v] : [...v]);
    headers.set(':method', [req.http.method]);
    headers.set(':path', [req.http.path]);
    headers.set(':authority', [req.http.host]);
  }
  return {
    req,
    source: address(req.sourceIp),
    remote: address(req.remoteIp ?? req.sourceIp),
    destination: address(req.destinationIp),
    headers,
    path: http ? req.http?.path : undefined,
    metadata: req.dynamicMetadata ?? {},
  };
}

function unsupported(what: unknown): never {
  throw new UnsupportedMatcher(`RBAC matcher ${JSON.stringify(what)} is not supported`);
}

function matchPermission(p: Permission, f: Facts): boolean {
  if ('and_rules' in p) return p.and_rules.rules.every((r) => matchPermission(r, f));
  if ('or_rules' in p) return p.or_rules.rules.some((r) => matchPermission(r, f));
  if ('not_rule' in p) return !matchPermission(p.not_rule, f);
  if ('any' in p) return p.any;
  if ('header' in p) return matchHeader(p.header, f.headers);
  if ('url_path' in p) return f.path !== undefined && matchString(p.url_path.path, pathWithoutQuery(f.path));
  if ('destination_ip' in p) return matchCidr(p.destination_ip, f.destination);
  if ('destination_port' in p) return f.req.destinationPort === p.destination_port;
  if ('destination_port_range' in p) return f.req.destinationPort >= p.destination_port_range.start && f.req.destinationPort < p.destination_port_range.end;
  if ('metadata' in p) return matchMetadata(p.metadata, f.metadata);
  if ('requested_server_name' in p) return matchString(p.requested_server_name, f.req.sni ?? '');
  if ('uri_template' in p) {
    const config = p.uri_template.typed_config;
    if (config['@type'] !== URI_TEMPLATE_MATCH_TYPE || typeof config.path_template !== 'string') unsupported(p);
    // Envoy matches the template against the :path; a request without one (TCP) has an empty path.
    return matchUriTemplate(config.path_template, f.path ?? '');
  }
  return unsupported(p);
}

function matchPrincipal(p: Principal, f: Facts): boolean {
  if ('and_ids' in p) return p.and_ids.ids.every((r) => matchPrincipal(r, f));
  if ('or_ids' in p) return p.or_ids.ids.some((r) => matchPrincipal(r, f));
  if ('not_id' in p) return !matchPrincipal(p.not_id, f);
  if ('any' in p) return p.any;
  if ('authenticated' in p) {
    if (f.req.sourcePrincipal === undefined) return false; // not a TLS connection with a client certificate
    const m = p.authenticated.principal_name;
    if (m === undefined) return true;
    return matchString(m, f.req.sourcePrincipal) || matchString(m, f.req.peerSubject ?? '');
  }
  if ('source_ip' in p) return matchCidr(p.source_ip, f.source);
  if ('direct_remote_ip' in p) return matchCidr(p.direct_remote_ip, f.source);
  if ('remote_ip' in p) return matchCidr(p.remote_ip, f.remote);
  if ('header' in p) return matchHeader(p.header, f.headers);
  if ('url_path' in p) return f.path !== undefined && matchString(p.url_path.path, pathWithoutQuery(f.path));
  if ('metadata' in p) return matchMetadata(p.metadata, f.metadata);
  if ('filter_state' in p) {
    const v = f.req.filterState?.[p.filter_state.key];
    return v !== undefined && matchString(p.filter_state.string_match, v);
  }
  return unsupported(p);
}

function matchPolicy(name: string, policy: Policy & { condition?: unknown; checked_condition?: unknown }, f: Facts): boolean {
  if (policy.condition !== undefined || policy.checked_condition !== undefined) {
    throw new UnsupportedMatcher(`policy ${name}: CEL conditions are not supported`);
  }
  return (policy.permissions ?? []).some((p) => matchPermission(p, f)) && (policy.principals ?? []).some((p) => matchPrincipal(p, f));
}

/** Byte-wise name order, as std::map<std::string, ...> keeps Envoy's policies. */
function byName(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}

function evaluateEngine(rbac: Rbac, f: Facts): EngineVerdict {
  const action = rbac.action ?? 'ALLOW';
  let policy: string | undefined;
  for (const name of Object.keys(rbac.policies ?? {}).sort(byName)) {
    if (matchPolicy(name, rbac.policies![name]!, f)) {
      policy = name;
      break;
    }
  }
  const matched = policy !== undefined;
  const allowed = action === 'ALLOW' ? matched : action === 'DENY' ? !matched : true;
  return policy === undefined ? { action, allowed } : { action, allowed, policy };
}

type AnyRbacConfig = (HttpRbac | NetworkRbac) & { matcher?: unknown; shadow_matcher?: unknown };

/** One RBAC filter's typed_config (the HTTP or the network flavour). */
export function evaluateRbacFilter(config: AnyRbacConfig, req: RbacRequest): FilterVerdict {
  if (config.matcher !== undefined || config.shadow_matcher !== undefined) throw new UnsupportedMatcher('RBAC matcher trees are not supported');
  const type = config['@type'];
  if (type !== HTTP_RBAC_TYPE && type !== NETWORK_RBAC_TYPE) throw new UnsupportedMatcher(`not an RBAC filter config: ${String(type)}`);
  const f = facts(req, type === HTTP_RBAC_TYPE);
  const out: FilterVerdict = { allowed: true };
  if (config.shadow_rules !== undefined) out.shadow = evaluateEngine(config.shadow_rules, f);
  if (config.rules !== undefined) {
    out.enforced = evaluateEngine(config.rules, f);
    out.allowed = out.enforced.allowed;
  }
  return out;
}

/** A chain of RBAC filters (as http_filters or network filters carry them), first denial wins. */
export function evaluateRbacChain(filters: readonly { typed_config: AnyRbacConfig }[], req: RbacRequest): ChainVerdict {
  const verdicts: FilterVerdict[] = [];
  let decidedBy: ChainVerdict['decidedBy'];
  for (const [i, filter] of filters.entries()) {
    const v = evaluateRbacFilter(filter.typed_config, req);
    verdicts.push(v);
    const e = v.enforced;
    if (e === undefined || e.action === 'LOG') continue;
    decidedBy = e.policy === undefined ? { filter: i, action: e.action } : { filter: i, action: e.action, policy: e.policy };
    if (!v.allowed) return { allowed: false, decidedBy, filters: verdicts };
  }
  return decidedBy === undefined ? { allowed: true, filters: verdicts } : { allowed: true, decidedBy, filters: verdicts };
}
