/**
 * One generator per Istio authorization attribute: how a value of `source.principal`,
 * `request.headers[x]`, `destination.port`, ... becomes an Envoy RBAC principal or permission
 * (pilot/pkg/security/authz/model/generator.go, permission.go, principal.go).
 *
 * A generator that cannot express a value throws GenerateError; `httpOnly` marks the expected
 * case of an HTTP attribute on a TCP filter chain, which the builder handles per action.
 */
import { parseIpBlock, formatIp } from '../../../common/ip.js';
import {
  headerMatcher, hostMatcher, metadataListOrValueMatcher, metadataValueMatcher, orMatcher, pathMatcher, prefixMatcher,
  quoteMeta, regexMatcher, stringMatcher, stringMatcherWithPrefix, stringOrMatcher, suffixMatcher, exactMatcher, uriTemplate,
} from './matchers.js';
import {
  URI_TEMPLATE_MATCH_TYPE, type CidrRange, type MetadataMatcher, type Permission, type Principal, type StringMatcher, type ValueMatcher,
} from './rbac-types.js';

export class GenerateError extends Error {
  override readonly name = 'GenerateError';
  constructor(message: string, readonly httpOnly = false) {
    super(message);
  }
}

/** Generates from one value; values are ORed and notValues negated by the caller. */
export interface ValueGenerator {
  readonly list?: false;
  permission?(key: string, value: string, forTcp: boolean): Permission;
  principal?(key: string, value: string, forTcp: boolean): Principal;
}

/** Generates from the whole list at once (JWT claims, dynamic metadata). */
export interface ListGenerator {
  readonly list: true;
  permission?(key: string, values: readonly string[], forTcp: boolean): Permission;
  principal?(key: string, values: readonly string[], forTcp: boolean): Principal;
}

export type Generator = ValueGenerator | ListGenerator;

const JWT_FILTER = 'envoy.filters.http.jwt_authn';
const JWT_PAYLOAD = 'payload';
const SPIFFE_PREFIX = 'spiffe://';

function httpOnly(key: string, forTcp: boolean): void {
  if (forTcp) throw new GenerateError(`${JSON.stringify(key)} is HTTP only`, true);
}

/** AddrStrToCidrRange: the prefix as netip prints it, a single address as /32 or /128. */
function cidrRange(value: string): CidrRange {
  const p = parseIpBlock(value);
  if (!p.ok) throw new GenerateError(p.error);
  return { address_prefix: formatIp(p.value.address), prefix_len: { value: p.value.bits } };
}

const authenticated = (m: StringMatcher): Principal => ({ authenticated: { principal_name: m } });

function port(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new GenerateError(`invalid port ${value}`);
  return Number(value);
}

/** `[a]` → a (util.go extractNameInBrackets). */
function nameInBrackets(s: string): string {
  if (!s.startsWith('[') || !s.endsWith(']')) throw new GenerateError(`expecting format [<NAME>], but found ${s}`);
  return s.slice(1, -1);
}

/** `[a]` → a; `[a][b]` → a, b: nested JWT claims (extractNameInNestedBrackets). */
function namesInBrackets(s: string): string[] {
  const single = (): string[] => [nameInBrackets(s)];
  const names: string[] = [];
  for (let begin = 0; begin < s.length;) {
    if (s[begin] !== '[') return single();
    const end = s.indexOf(']', begin + 1);
    const nextOpen = s.indexOf('[', begin + 1);
    if (end < 0 || (nextOpen >= 0 && nextOpen < end)) return single();
    names.push(s.slice(begin + 1, end));
    begin = end + 1;
  }
  return names;
}

const jwtClaim = (claim: string, m: StringMatcher): MetadataMatcher => ({
  filter: JWT_FILTER, path: [{ key: JWT_PAYLOAD }, { key: claim }], value: { string_match: m },
});
const jwtClaims = (claims: readonly string[], value: ValueMatcher): MetadataMatcher => metadataListOrValueMatcher(JWT_FILTER, [JWT_PAYLOAD, ...claims], value);

const destIp: ValueGenerator = { permission: (_k, v) => ({ destination_ip: cidrRange(v) }) };
const destPort: ValueGenerator = { permission: (_k, v) => ({ destination_port: port(v) }) };
const connSni: ValueGenerator = { permission: (_k, v) => ({ requested_server_name: stringMatcher(v) }) };
const srcIp: ValueGenerator = { principal: (_k, v) => ({ direct_remote_ip: cidrRange(v) }) };
const remoteIp: ValueGenerator = { principal: (_k, v) => ({ remote_ip: cidrRange(v) }) };

/** `source.namespace`: a regex on the peer's SPIFFE ID; `*` inside a value matches anything. */
const srcNamespace: ValueGenerator = {
  principal: (_k, v) => authenticated(regexMatcher(`.*/ns/${v.split('*').map(quoteMeta).join('.*')}/.*`)),
};

/** `source.serviceAccount`: `sa` (the policy's namespace) or `ns/sa`, extra SPIFFE path segments allowed. */
function srcServiceAccount(policyNamespace: string): ValueGenerator {
  return {
    principal: (_k, v) => {
      const slash = v.indexOf('/');
      const [ns, sa] = slash < 0 ? [policyNamespace, v] : [v.slice(0, slash), v.slice(slash + 1)];
      return authenticated(regexMatcher(`spiffe://.+/ns/${quoteMeta(ns)}/(.+/|)sa/${quoteMeta(sa)}(/.+)?`));
    },
  };
}

const srcTrustDomain: ValueGenerator = {
  principal: (_k, v) => {
    if (v === '*') return authenticated(prefixMatcher(SPIFFE_PREFIX));
    if (!v.includes('*')) return authenticated(prefixMatcher(`${SPIFFE_PREFIX}${v}/`));
    const star = v.indexOf('*');
    return authenticated(regexMatcher(`spiffe://${quoteMeta(v.slice(0, star))}[^/]*${quoteMeta(v.slice(star + 1))}/.*`));
  },
};

const srcPrincipal: ValueGenerator = { principal: (_k, v) => authenticated(stringMatcherWithPrefix(v, SPIFFE_PREFIX)) };

const MATCH_ANY = regexMatcher('.+');

/** `request.auth.principal` / requestPrincipals: `<iss>/<sub>`, split at the last `/`. */
const requestPrincipal: ListGenerator = {
  list: true,
  principal: (key, values, forTcp) => {
    httpOnly(key, forTcp);
    const or: Principal[] = values.map((value) => {
      const idx = value.lastIndexOf('/');
      const found = idx >= 0;
      const iss = found ? value.slice(0, idx) : value;
      const sub = found ? value.slice(idx + 1) : '';
      let matchIss: StringMatcher;
      let matchSub: StringMatcher;
      if (value === '*') [matchIss, matchSub] = [MATCH_ANY, MATCH_ANY];
      else if (value.startsWith('*')) {
        if (found) [matchIss, matchSub] = [iss === '*' ? MATCH_ANY : suffixMatcher(iss.slice(1)), exactMatcher(sub)];
        else [matchIss, matchSub] = [MATCH_ANY, suffixMatcher(value.slice(1))];
      } else if (value.endsWith('*')) {
        if (found) [matchIss, matchSub] = [exactMatcher(iss), sub === '*' ? MATCH_ANY : prefixMatcher(sub.slice(0, -1))];
        else [matchIss, matchSub] = [prefixMatcher(value.slice(0, -1)), MATCH_ANY];
      } else [matchIss, matchSub] = [exactMatcher(iss), exactMatcher(sub)];
      return { and_ids: { ids: [{ metadata: jwtClaim('iss', matchIss) }, { metadata: jwtClaim('sub', matchSub) }] } };
    });
    return or.length === 1 ? or[0]! : { or_ids: { ids: or } };
  },
};

function claimList(claim: string): ListGenerator {
  return {
    list: true,
    principal: (key, values, forTcp) => {
      httpOnly(key, forTcp);
      return { metadata: jwtClaims([claim], stringOrMatcher(values)) };
    },
  };
}

const requestClaims: ListGenerator = {
  list: true,
  principal: (key, values, forTcp) => {
    httpOnly(key, forTcp);
    return { metadata: jwtClaims(namesInBrackets(key.slice('request.auth.claims'.length)), stringOrMatcher(values)) };
  },
};

const requestHeader: ValueGenerator = {
  principal: (key, value, forTcp) => {
    httpOnly(key, forTcp);
    return { header: headerMatcher(nameInBrackets(key.slice('request.headers'.length)), value) };
  },
};

/** `experimental.envoy.filters.a.b[c]`: dynamic metadata of filter `envoy.filters.a.b`, key `c`; `[v]` matches in a list. */
const envoyFilter: ListGenerator = {
  list: true,
  permission: (key, values) => {
    const inner = key.replace(/^experimental\./, '').replace(/\]$/, '');
    const open = inner.indexOf('[');
    if (open < 0) throw new GenerateError(`invalid key: ${key}`);
    const matchers: ValueMatcher[] = values.map((v) => (v.startsWith('[') && v.endsWith(']')
      ? { list_match: { one_of: { string_match: stringMatcher(v.replace(/^[[\]]+|[[\]]+$/g, '')) } } }
      : { string_match: stringMatcher(v) }));
    return { metadata: metadataValueMatcher(inner.slice(0, open), inner.slice(open + 1), orMatcher(matchers)) };
  },
};

const host: ValueGenerator = {
  permission: (key, v, forTcp) => {
    httpOnly(key, forTcp);
    return { header: hostMatcher(':authority', v) };
  },
};
const method: ValueGenerator = {
  permission: (key, v, forTcp) => {
    httpOnly(key, forTcp);
    return { header: headerMatcher(':method', v) };
  },
};
const path: ValueGenerator = {
  permission: (key, v, forTcp) => {
    httpOnly(key, forTcp);
    if (v.includes('{*}') || v.includes('{**}')) {
      return { uri_template: { name: 'uri-template', typed_config: { '@type': URI_TEMPLATE_MATCH_TYPE, path_template: uriTemplate(v) } } };
    }
    return { url_path: pathMatcher(v) };
  },
};

/** Attribute keys as Istio names them in `when` (from/to fields map onto the same keys). */
export const ATTR = {
  srcIp: 'source.ip', remoteIp: 'remote.ip', srcNamespace: 'source.namespace', srcServiceAccount: 'source.serviceAccount',
  srcTrustDomain: 'source.trustDomain', srcPrincipal: 'source.principal', requestPrincipal: 'request.auth.principal',
  destIp: 'destination.ip', destPort: 'destination.port', connSni: 'connection.sni',
  host: ':authority', method: ':method', path: 'path-matcher',
} as const;

export const generators = {
  destIp, destPort, connSni, srcIp, remoteIp, srcNamespace, srcServiceAccount, srcTrustDomain, srcPrincipal, requestPrincipal,
  requestClaims, requestHeader, envoyFilter, host, method, path,
  audiences: claimList('aud'), presenter: claimList('azp'),
};

/** Which side and generator a `when` key feeds (model.go New); undefined for an unknown key. */
export function conditionGenerator(key: string, policyNamespace: string): { side: 'permission' | 'principal'; g: Generator } | undefined {
  switch (key) {
    case 'destination.ip': return { side: 'permission', g: destIp };
    case 'destination.port': return { side: 'permission', g: destPort };
    case 'connection.sni': return { side: 'permission', g: connSni };
    case 'source.ip': return { side: 'principal', g: srcIp };
    case 'remote.ip': return { side: 'principal', g: remoteIp };
    case 'source.namespace': return { side: 'principal', g: srcNamespace };
    case 'source.trustDomain': return { side: 'principal', g: srcTrustDomain };
    case 'source.serviceAccount': return { side: 'principal', g: srcServiceAccount(policyNamespace) };
    case 'source.principal': return { side: 'principal', g: srcPrincipal };
    case 'request.auth.principal': return { side: 'principal', g: requestPrincipal };
    case 'request.auth.audiences': return { side: 'principal', g: generators.audiences };
    case 'request.auth.presenter': return { side: 'principal', g: generators.presenter };
  }
  if (key.startsWith('experimental.envoy.filters.')) return { side: 'permission', g: envoyFilter };
  if (key.startsWith('request.headers')) return { side: 'principal', g: requestHeader };
  if (key.startsWith('request.auth.claims')) return { side: 'principal', g: requestClaims };
  return undefined;
}
