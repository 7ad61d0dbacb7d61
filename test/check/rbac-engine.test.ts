/**
 * The RBAC evaluator against hand-written Envoy configs (not meshd's compiler), each check one
 * rule of Envoy's own matchers.cc / engine_impl.cc / header_utility.cc. Every config goes
 * through Envoy's protos first, so the evaluator reads what Envoy would parse.
 */
import t from 'tap';
import { parse } from 'yaml';
import { evaluateRbacChain, evaluateRbacFilter, type RbacRequest } from '../../src/check/rbac-engine.js';
import { HTTP_RBAC_TYPE, NETWORK_RBAC_TYPE, type HttpRbac, type NetworkRbac } from '../../src/xds/generators/authz/rbac-types.js';
import { throughEnvoyProtos } from './rbac-wire.js';

const REQ: RbacRequest = {
  sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/web',
  sourceIp: '10.0.0.9',
  destinationIp: '10.0.0.1',
  destinationPort: 8080,
  http: { method: 'GET', path: '/api/items?x=1#frag', host: 'api.shop', headers: { 'x-user': 'alice', accept: ['text/html', 'application/json'] } },
};

/** An HTTP RBAC config from YAML (rules only), through Envoy's protos. */
function http(rulesYaml: string, extra: Record<string, unknown> = {}): HttpRbac {
  const config = { '@type': HTTP_RBAC_TYPE, rules: parse(rulesYaml), ...extra };
  return throughEnvoyProtos({ name: 'envoy.filters.http.rbac', typed_config: config as HttpRbac }).typed_config;
}

/** One ALLOW policy with this permission (principals any), or this principal (permissions any). */
const permission = (yaml: string): HttpRbac => http(`action: ALLOW\npolicies:\n  p:\n    permissions: [${yaml}]\n    principals: [{any: true}]\n`);
const principal = (yaml: string): HttpRbac => http(`action: ALLOW\npolicies:\n  p:\n    permissions: [{any: true}]\n    principals: [${yaml}]\n`);
const allows = (config: HttpRbac | NetworkRbac, req: RbacRequest = REQ): boolean => evaluateRbacFilter(config, req).allowed;

t.test('headers: joined with ",", names case-insensitive, missing header only matches presence false', async (t) => {
  t.ok(allows(permission('{header: {name: X-User, string_match: {exact: alice}}}')));
  t.ok(allows(permission('{header: {name: accept, string_match: {exact: "text/html,application/json"}}}')), 'repeated header values are joined');
  t.notOk(allows(permission('{header: {name: accept, string_match: {exact: "text/html"}}}')));
  t.notOk(allows(permission('{header: {name: x-missing, string_match: {prefix: a}}}')), 'a missing header never matches a value');
  t.notOk(allows(permission('{header: {name: x-missing, string_match: {prefix: a}, invert_match: true}}')), 'not even inverted');
  t.ok(allows(permission('{header: {name: x-missing, present_match: false}}')));
  t.ok(allows(permission('{header: {name: x-missing, present_match: true, invert_match: true}}')));
  t.notOk(allows(permission('{header: {name: x-user, present_match: true, invert_match: true}}')));
  t.ok(allows(permission('{header: {name: x-missing, string_match: {exact: ""}, treat_missing_header_as_empty: true}}')));
  t.ok(allows(permission('{header: {name: ":authority", string_match: {exact: API.SHOP, ignore_case: true}}}')), ':authority is the Host');
  t.notOk(allows(permission('{header: {name: ":authority", string_match: {exact: API.SHOP}}}')));
  t.ok(allows(permission('{header: {name: ":method", string_match: {exact: GET}}}')));
});

t.test('string matchers: prefix, suffix, contains, full-match regex', async (t) => {
  t.ok(allows(permission('{header: {name: x-user, string_match: {prefix: al}}}')));
  t.ok(allows(permission('{header: {name: x-user, string_match: {suffix: ICE, ignore_case: true}}}')));
  t.ok(allows(permission('{header: {name: x-user, string_match: {contains: lic}}}')));
  t.ok(allows(permission('{header: {name: x-user, string_match: {safe_regex: {regex: "a.*e"}}}}')));
  t.notOk(allows(permission('{header: {name: x-user, string_match: {safe_regex: {regex: "lic"}}}}')), 'a regex must match the whole value');
});

t.test('url_path ignores the query and fragment; a network filter has no path or headers', async (t) => {
  t.ok(allows(permission('{url_path: {path: {exact: /api/items}}}')));
  t.notOk(allows(permission('{url_path: {path: {exact: "/api/items?x=1"}}}')));
  const tcp = throughEnvoyProtos({
    name: 'envoy.filters.network.rbac',
    typed_config: { '@type': NETWORK_RBAC_TYPE, stat_prefix: 'tcp.', rules: parse('action: ALLOW\npolicies:\n  p: {permissions: [{url_path: {path: {prefix: /}}}], principals: [{any: true}]}\n') } as NetworkRbac,
  }).typed_config;
  t.notOk(allows(tcp), 'no :path on a TCP connection');
});

t.test('authenticated: needs a client certificate; matches its URI SAN', async (t) => {
  const sa = principal('{authenticated: {principal_name: {exact: "spiffe://cluster.local/ns/shop/sa/web"}}}');
  t.ok(allows(sa));
  t.notOk(allows(sa, { ...REQ, sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/other' }));
  const anyPeer = principal('{authenticated: {}}');
  t.ok(allows(anyPeer), 'no principal_name: any authenticated peer');
  t.notOk(allows(anyPeer, { ...REQ, sourcePrincipal: undefined }), 'plaintext is never authenticated');
  const notPeer = principal('{not_id: {authenticated: {principal_name: {safe_regex: {regex: ".+"}}}}}');
  t.ok(allows(notPeer, { ...REQ, sourcePrincipal: undefined }), 'NOT(authenticated) matches plaintext');
});

t.test('addresses: direct_remote_ip is the peer, remote_ip the original client, destination_ip the local address', async (t) => {
  const req = { ...REQ, sourceIp: '10.0.0.9', remoteIp: '203.0.113.7' };
  t.ok(allows(principal('{direct_remote_ip: {address_prefix: 10.0.0.0, prefix_len: {value: 24}}}'), req));
  t.notOk(allows(principal('{direct_remote_ip: {address_prefix: 203.0.113.0, prefix_len: {value: 24}}}'), req));
  t.ok(allows(principal('{remote_ip: {address_prefix: 203.0.113.0, prefix_len: {value: 24}}}'), req));
  t.ok(allows(principal('{remote_ip: {address_prefix: 10.0.0.9, prefix_len: {value: 32}}}'), { ...REQ }), 'remote defaults to the peer');
  t.ok(allows(principal('{source_ip: {address_prefix: 10.0.0.9, prefix_len: {value: 32}}}'), req), 'deprecated source_ip is the connection peer');
  t.ok(allows(permission('{destination_ip: {address_prefix: 10.0.0.1, prefix_len: {value: 32}}}')));
  t.ok(allows(permission('{destination_ip: {address_prefix: 0.0.0.0}}')), 'no prefix_len: /0');
  t.notOk(allows(permission('{destination_ip: {address_prefix: "::"}}')), 'an IPv6 range never holds an IPv4 address');
});

t.test('ports, SNI, and set logic', async (t) => {
  t.ok(allows(permission('{destination_port: 8080}')));
  t.notOk(allows(permission('{destination_port: 80}')));
  t.ok(allows(permission('{destination_port_range: {start: 8000, end: 8081}}')));
  t.notOk(allows(permission('{destination_port_range: {start: 8000, end: 8080}}')), 'the range end is exclusive');
  t.ok(allows(permission('{requested_server_name: {exact: ""}}')), 'no SNI is the empty name');
  t.ok(allows(permission('{requested_server_name: {suffix: .shop}}'), { ...REQ, sni: 'api.shop' }));
  t.ok(allows(permission('{and_rules: {rules: [{destination_port: 8080}, {not_rule: {destination_port: 80}}]}}')));
  t.notOk(allows(permission('{and_rules: {rules: [{destination_port: 8080}, {destination_port: 80}]}}')));
  t.ok(allows(permission('{or_rules: {rules: [{destination_port: 80}, {destination_port: 8080}]}}')));
});

t.test('dynamic metadata: path, lists, or_match, invert; absent metadata matches nothing but NOT', async (t) => {
  const claims = { 'envoy.filters.http.jwt_authn': { payload: { iss: 'https://idp', groups: ['dev', 'admin'] } } };
  const withJwt = { ...REQ, dynamicMetadata: claims };
  const iss = principal('{metadata: {filter: envoy.filters.http.jwt_authn, path: [{key: payload}, {key: iss}], value: {string_match: {exact: "https://idp"}}}}');
  t.ok(allows(iss, withJwt));
  t.notOk(allows(iss), 'no JWT: no metadata');
  const groups = principal('{metadata: {filter: envoy.filters.http.jwt_authn, path: [{key: payload}, {key: groups}], value: {or_match: {value_matchers: [{list_match: {one_of: {string_match: {exact: admin}}}}, {string_match: {exact: admin}}]}}}}');
  t.ok(allows(groups, withJwt));
  const notIss = principal('{metadata: {filter: envoy.filters.http.jwt_authn, path: [{key: payload}, {key: iss}], value: {string_match: {safe_regex: {regex: ".+"}}}, invert: true}}');
  t.ok(allows(notIss), 'inverted: matches when the claim is absent');
  t.ok(allows(principal('{filter_state: {key: io.istio.peer_principal, string_match: {prefix: "spiffe://"}}}'), { ...REQ, filterState: { 'io.istio.peer_principal': 'spiffe://x' } }));
});

t.test('policies are tried in name order; the first match is the effective policy', async (t) => {
  const config = http('action: DENY\npolicies:\n  b-second: {permissions: [{any: true}], principals: [{any: true}]}\n  a-first: {permissions: [{any: true}], principals: [{any: true}]}\n');
  t.same(evaluateRbacFilter(config, REQ), { allowed: false, enforced: { action: 'DENY', allowed: false, policy: 'a-first' } });
});

t.test('actions: ALLOW without a match denies, DENY without a match allows, LOG always allows', async (t) => {
  const none = 'policies:\n  p: {permissions: [{destination_port: 1}], principals: [{any: true}]}\n';
  t.same(evaluateRbacFilter(http(`action: ALLOW\n${none}`), REQ), { allowed: false, enforced: { action: 'ALLOW', allowed: false } });
  t.same(evaluateRbacFilter(http(`action: DENY\n${none}`), REQ), { allowed: true, enforced: { action: 'DENY', allowed: true } });
  const all = 'policies:\n  audit: {permissions: [{any: true}], principals: [{any: true}]}\n';
  t.same(evaluateRbacFilter(http(`action: LOG\n${all}`), REQ), { allowed: true, enforced: { action: 'LOG', allowed: true, policy: 'audit' } });
  t.same(evaluateRbacFilter(http('{}'), REQ), { allowed: false, enforced: { action: 'ALLOW', allowed: false } }, 'rules present but empty: ALLOW nothing');
});

t.test('shadow rules are evaluated and never enforced; a filter without rules allows', async (t) => {
  const config = throughEnvoyProtos({
    name: 'envoy.filters.http.rbac',
    typed_config: {
      '@type': HTTP_RBAC_TYPE,
      shadow_rules: parse('action: DENY\npolicies:\n  dry: {permissions: [{any: true}], principals: [{any: true}]}\n'),
      shadow_rules_stat_prefix: 'istio_dry_run_deny_',
    } as HttpRbac,
  }).typed_config;
  t.same(evaluateRbacFilter(config, REQ), { allowed: true, shadow: { action: 'DENY', allowed: false, policy: 'dry' } });
});

t.test('a chain stops at the first denial and names the deciding filter and policy', async (t) => {
  const deny = { typed_config: http('action: DENY\npolicies:\n  no-admin: {permissions: [{url_path: {path: {prefix: /admin}}}], principals: [{any: true}]}\n') };
  const allow = { typed_config: http('action: ALLOW\npolicies:\n  api: {permissions: [{url_path: {path: {prefix: /api}}}], principals: [{any: true}]}\n') };
  const at = (path: string): RbacRequest => ({ ...REQ, http: { ...REQ.http!, path } });
  t.same(evaluateRbacChain([deny, allow], at('/admin/x')), {
    allowed: false, decidedBy: { filter: 0, action: 'DENY', policy: 'no-admin' }, filters: [{ allowed: false, enforced: { action: 'DENY', allowed: false, policy: 'no-admin' } }],
  });
  const ok = evaluateRbacChain([deny, allow], at('/api/x'));
  t.equal(ok.allowed, true);
  t.same(ok.decidedBy, { filter: 1, action: 'ALLOW', policy: 'api' });
  const denied = evaluateRbacChain([deny, allow], at('/other'));
  t.same(denied.decidedBy, { filter: 1, action: 'ALLOW' }, 'denied because no ALLOW policy matched');
  t.same(evaluateRbacChain([], at('/other')), { allowed: true, filters: [] });
});

t.test('URI templates: * is one segment, ** any number; the query is ignored', async (t) => {
  const tpl = (template: string): HttpRbac => permission(`{uri_template: {name: uri-template, typed_config: {"@type": type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig, path_template: "${template}"}}}`);
  const at = (path: string): RbacRequest => ({ ...REQ, http: { ...REQ.http!, path } });
  t.ok(allows(tpl('/api/*'), at('/api/items?x=1')));
  t.notOk(allows(tpl('/api/*'), at('/api/items/1')));
  t.ok(allows(tpl('/api/**'), at('/api/items/1/2')));
  t.ok(allows(tpl('/api/*/x.txt'), at('/api/a/x.txt')));
  t.notOk(allows(tpl('/api/*/x.txt'), at('/api/a/xytxt')), 'a literal dot is not a regex dot');
});

t.test('what Envoy supports but the evaluator does not is refused, never guessed', async (t) => {
  const cel = http('action: ALLOW\npolicies:\n  p: {permissions: [{any: true}], principals: [{any: true}], condition: {const_expr: {bool_value: true}}}\n');
  t.throws(() => evaluateRbacFilter(cel, REQ), { name: 'UnsupportedMatcher', message: 'policy p: CEL conditions are not supported' });
  const flags = permission('{header: {name: x-user, string_match: {safe_regex: {regex: "(?i)ALICE"}}}}');
  t.throws(() => evaluateRbacFilter(flags, REQ), { name: 'UnsupportedMatcher' });
});
