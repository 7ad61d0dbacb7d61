/**
 * The RBAC filters meshd emits have istiod's shape (pilot/pkg/security/authz/builder): filter
 * order, policy names, attribute order, stat prefixes, trust domain expansion; every one
 * decodes strictly against Envoy's protos; and what cannot be compiled fails closed.
 */
import t from 'tap';
import { parse } from 'yaml';
import { snapshotOf, yaml } from '../../config/helpers.js';
import type { AuthorizationPolicy, AuthorizationRule } from '../../../src/config/model.js';
import { authorizationFor, NO_AUTHORIZATION } from '../../../src/mesh/authorization-policy.js';
import {
  FAIL_CLOSED_POLICY, buildHttpRbacFilters, buildNetworkRbacFilters, type AuthzBuildInput,
} from '../../../src/xds/generators/authz/build-rbac.js';
import { evaluateRbacChain } from '../../../src/check/rbac-engine.js';
import { throughEnvoyProtos } from '../../check/rbac-wire.js';

function inputFor(policies: string, mesh = { trustDomain: 'cluster.local', aliases: [] as string[] }): AuthzBuildInput {
  const snap = snapshotOf({ 'authz.yaml': policies });
  const errors = snap.messages.filter((m) => m.level === 'error');
  if (errors.length > 0) throw new Error(JSON.stringify(errors));
  return {
    authorization: authorizationFor(snap.authorizationPolicies, 'istio-system', { namespace: 'foo', labels: { app: 'httpbin' } }),
    trustDomain: mesh.trustDomain,
    trustDomainAliases: mesh.aliases,
  };
}

const doc = (name: string, spec: string, annotations = ''): string =>
  `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: ${name}\n  namespace: foo\n${annotations}spec:\n${spec}`;

t.test('filters come in istiod\'s order: bad CUSTOM, AUDIT, DENY, ALLOW; every filter carries istiod\'s prefixes', async (t) => {
  const input = inputFor([
    doc('allow', '  rules: [{}]\n'),
    doc('deny', '  action: DENY\n  rules: [{}]\n'),
    doc('audit', '  action: AUDIT\n  rules: [{}]\n'),
    doc('ext', '  action: CUSTOM\n  provider: {name: opa}\n  rules: [{}]\n'),
    doc('dry-deny', '  action: DENY\n  rules: [{}]\n', '  annotations: {"istio.io/dry-run": "true"}\n'),
  ].join('---\n'));
  const http = buildHttpRbacFilters(input);
  t.same(http.problems, []);
  t.same(http.filters.map((f) => [f.name, f.typed_config.rules?.action, Object.keys(f.typed_config.rules?.policies ?? {}), f.typed_config.shadow_rules_stat_prefix]), [
    ['envoy.filters.http.rbac', 'DENY', ['istio-ext-authz-opa-ns[foo]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action'], undefined],
    ['envoy.filters.http.rbac', 'LOG', ['ns[foo]-policy[audit]-rule[0]'], 'istio_dry_run_allow_'],
    ['envoy.filters.http.rbac', 'DENY', ['ns[foo]-policy[deny]-rule[0]'], 'istio_dry_run_deny_'],
    ['envoy.filters.http.rbac', 'ALLOW', ['ns[foo]-policy[allow]-rule[0]'], 'istio_dry_run_allow_'],
  ]);
  t.same(Object.keys(http.filters[2]!.typed_config.shadow_rules?.policies ?? {}), ['ns[foo]-policy[dry-deny]-rule[0]'], 'the dry-run policy is a shadow rule');
  const tcp = buildNetworkRbacFilters(input);
  t.same(tcp.filters.map((f) => [f.name, f.typed_config.stat_prefix]), Array(4).fill(['envoy.filters.network.rbac', 'tcp.']));
  for (const f of [...http.filters, ...tcp.filters]) t.doesNotThrow(() => throughEnvoyProtos(f), 'Envoy accepts it');
});

t.test('no policy, no filter; an ALLOW policy without rules never matches; a TCP ALLOW without TCP rules has no policies', async (t) => {
  t.same(buildHttpRbacFilters({ authorization: NO_AUTHORIZATION, trustDomain: 'cluster.local', trustDomainAliases: [] }), { filters: [], problems: [] });
  const nothing = buildHttpRbacFilters(inputFor(doc('allow-nothing', '  {}\n')));
  t.same(nothing.filters[0]!.typed_config.rules, {
    action: 'ALLOW',
    policies: { 'ns[foo]-policy[allow-nothing]-rule[0]': { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] } },
  });
  const httpOnly = buildNetworkRbacFilters(inputFor(doc('get-only', '  rules:\n  - to:\n    - operation: {methods: [GET]}\n')));
  t.same(httpOnly.filters[0]!.typed_config.rules, { action: 'ALLOW', policies: {} });
  t.same(httpOnly.problems, [], 'an ALLOW rule that does not apply to TCP is not a problem');
});

t.test('attributes in istiod\'s order, values ORed, notValues as NOT(OR)', async (t) => {
  const input = inputFor(doc('all', yaml`
      rules:
      - from:
        - source:
            ipBlocks: ["10.0.0.0/8"]
            remoteIpBlocks: ["192.0.2.1"]
            namespaces: [ns]
            principals: [a/ns/b/sa/c, "*"]
            notPrincipals: [x/ns/y/sa/z]
        to:
        - operation:
            ports: ["80"]
            paths: [/p]
            methods: [GET]
            hosts: [h]
        when:
        - key: source.ip
          values: ["10.1.1.1"]
        - key: destination.port
          values: ["81"]
  `.replace(/^/gm, '  ')));
  const policy = buildHttpRbacFilters(input).filters[0]!.typed_config.rules!.policies!['ns[foo]-policy[all]-rule[0]']!;
  t.same(policy, parse(`
    permissions:
    - and_rules:
        rules:
        - or_rules: {rules: [{header: {name: ":authority", string_match: {exact: h, ignore_case: true}}}]}
        - or_rules: {rules: [{header: {name: ":method", string_match: {exact: GET}}}]}
        - or_rules: {rules: [{url_path: {path: {exact: /p}}}]}
        - or_rules: {rules: [{destination_port: 80}]}
        - or_rules: {rules: [{destination_port: 81}]}
    principals:
    - and_ids:
        ids:
        - or_ids: {ids: [{authenticated: {principal_name: {exact: "spiffe://a/ns/b/sa/c"}}}, {authenticated: {principal_name: {safe_regex: {regex: .+}}}}]}
        - not_id: {or_ids: {ids: [{authenticated: {principal_name: {exact: "spiffe://x/ns/y/sa/z"}}}]}}
        - or_ids: {ids: [{authenticated: {principal_name: {safe_regex: {regex: .*/ns/ns/.*}}}}]}
        - or_ids: {ids: [{remote_ip: {address_prefix: 192.0.2.1, prefix_len: {value: 32}}}]}
        - or_ids: {ids: [{direct_remote_ip: {address_prefix: 10.0.0.0, prefix_len: {value: 8}}}]}
        - or_ids: {ids: [{direct_remote_ip: {address_prefix: 10.1.1.1, prefix_len: {value: 32}}}]}
  `));
});

t.test('principals expand over the trust domain and its aliases, cluster.local standing for the local one', async (t) => {
  const input = inputFor(doc('p', '  rules:\n  - from:\n    - source: {principals: ["cluster.local/ns/foo/sa/sleep", "other/ns/foo/sa/x", "*/ns/foo/sa/y"]}\n'),
    { trustDomain: 'td1', aliases: ['td0'] });
  const policy = buildHttpRbacFilters(input).filters[0]!.typed_config.rules!.policies!['ns[foo]-policy[p]-rule[0]']!;
  const names = JSON.stringify(policy.principals).match(/"(exact|regex)":"[^"]*"/g);
  t.same(names, [
    '"exact":"spiffe://td1/ns/foo/sa/sleep"',
    '"exact":"spiffe://td0/ns/foo/sa/sleep"',
    '"exact":"spiffe://other/ns/foo/sa/x"',
    '"regex":"spiffe://.*/ns/foo/sa/y"',
  ]);
});

/** A policy the parser would refuse, built directly: the compiler must still fail closed. */
function rawPolicy(action: AuthorizationPolicy['action'], rule: AuthorizationRule): AuthorizationPolicy {
  return {
    kind: 'AuthorizationPolicy',
    meta: { name: 'raw', namespace: 'foo', labels: {}, annotations: {}, source: { file: 'x', line: 1 } },
    targetRefs: [], action, rules: [rule], dryRun: false,
  };
}
const unknownKey: AuthorizationRule = { from: [], to: [], when: [{ key: 'request.time', values: ['x'], notValues: [] }] };
const base = { trustDomain: 'cluster.local', trustDomainAliases: [] };
const req = { sourceIp: '10.0.0.9', destinationIp: '10.0.0.1', destinationPort: 80, http: { method: 'GET', path: '/', host: 'h' } };

t.test('a DENY rule that cannot be compiled matches every request, and is reported', async (t) => {
  const built = buildHttpRbacFilters({ ...base, authorization: { ...NO_AUTHORIZATION, deny: [rawPolicy('DENY', unknownKey)] } });
  t.same(built.problems, [{ policy: 'AuthorizationPolicy/foo/raw', rule: 0, message: 'unknown attribute request.time; the rule matches every request' }]);
  const verdict = evaluateRbacChain(built.filters.map((f) => throughEnvoyProtos(f)), req);
  t.same([verdict.allowed, verdict.decidedBy?.policy], [false, 'ns[foo]-policy[raw]-rule[0]']);
});

t.test('an ALLOW rule that cannot be compiled allows nothing, and is reported', async (t) => {
  const built = buildNetworkRbacFilters({ ...base, authorization: { ...NO_AUTHORIZATION, allow: [rawPolicy('ALLOW', unknownKey)] } });
  t.same(built.problems, [{ policy: 'AuthorizationPolicy/foo/raw', rule: 0, message: 'unknown attribute request.time; the rule allows nothing' }]);
  t.same(built.filters[0]!.typed_config.rules, { action: 'ALLOW', policies: {} });
  t.equal(evaluateRbacChain(built.filters.map((f) => throughEnvoyProtos(f)), req).allowed, false);
});

t.test('a bad value in a DENY rule is left out (the rule matches more), reported; in an ALLOW rule the rule allows nothing', async (t) => {
  const badIp: AuthorizationRule = { from: [], to: [{ hosts: [], notHosts: [], ports: ['80', 'http'], notPorts: [], methods: [], notMethods: [], paths: [], notPaths: [] }], when: [] };
  const deny = buildNetworkRbacFilters({ ...base, authorization: { ...NO_AUTHORIZATION, deny: [rawPolicy('DENY', badIp)] } });
  t.same(deny.problems.map((p) => p.message), ['destination.port: invalid port http; the condition is left out, so the rule matches more requests']);
  const allow = buildNetworkRbacFilters({ ...base, authorization: { ...NO_AUTHORIZATION, allow: [rawPolicy('ALLOW', badIp)] } });
  t.same(allow.problems.map((p) => p.message), ['invalid port http; the rule allows nothing']);
});

t.test('an unexpected failure yields one filter that denies everything, never a half-built one', async (t) => {
  const broken = { ...rawPolicy('ALLOW', unknownKey), rules: null } as unknown as AuthorizationPolicy;
  for (const build of [buildHttpRbacFilters, buildNetworkRbacFilters]) {
    const built = build({ ...base, authorization: { ...NO_AUTHORIZATION, deny: [rawPolicy('DENY', { from: [], to: [], when: [] })], allow: [broken] } });
    t.equal(built.filters.length, 1);
    t.same(Object.keys(built.filters[0]!.typed_config.rules!.policies!), [FAIL_CLOSED_POLICY]);
    t.equal(built.problems.length, 1);
    t.match(built.problems[0]!.message, /^building the RBAC filters failed \(.*\); every request is denied$/);
    const verdict = evaluateRbacChain([throughEnvoyProtos(built.filters[0]!)], req);
    t.same([verdict.allowed, verdict.decidedBy?.policy], [false, FAIL_CLOSED_POLICY]);
  }
});

t.test('every field of the API compiles to a config Envoy accepts, on HTTP and TCP chains', async (t) => {
  const input = inputFor(doc('everything', yaml`
      action: DENY
      rules:
      - from:
        - source:
            principals: ["p", "*s", "p*", "*"]
            notPrincipals: ["np"]
            requestPrincipals: ["iss/sub", "*/sub", "iss/*", "*"]
            notRequestPrincipals: ["x"]
            namespaces: ["n*"]
            notNamespaces: ["*n"]
            ipBlocks: ["1.2.3.4", "2001:db8::/32"]
            notIpBlocks: ["9.9.9.9"]
            remoteIpBlocks: ["172.18.4.0/22"]
            notRemoteIpBlocks: ["::1"]
        - source:
            serviceAccounts: ["sa", "ns/sa"]
            notServiceAccounts: ["other"]
            trustDomains: ["td", "*.td", "*"]
            notTrustDomains: ["bad*"]
        to:
        - operation:
            hosts: ["h", "*.h", "h*", "*"]
            notHosts: ["nh"]
            ports: ["80"]
            notPorts: ["81"]
            methods: ["GET"]
            notMethods: ["*"]
            paths: ["/a", "/b/{*}", "/c/{**}"]
            notPaths: ["*/x"]
        when:
        - {key: "request.headers[x-a]", values: ["*", "a*", "*a"], notValues: ["b"]}
        - {key: source.ip, values: ["10.0.0.1"], notValues: ["10.0.0.2"]}
        - {key: remote.ip, values: ["10.0.0.0/8"]}
        - {key: source.namespace, values: ["n"]}
        - {key: source.principal, values: ["cluster.local/ns/a/sa/b"]}
        - {key: source.serviceAccount, values: ["a/b"]}
        - {key: source.trustDomain, values: ["cluster.local"]}
        - {key: request.auth.principal, values: ["i/s"]}
        - {key: request.auth.audiences, values: ["aud1", "aud2"]}
        - {key: request.auth.presenter, values: ["azp"]}
        - {key: "request.auth.claims[groups][admin]", values: ["yes"]}
        - {key: destination.ip, values: ["10.0.0.1"]}
        - {key: destination.port, values: ["80"]}
        - {key: connection.sni, values: ["*.example.com"]}
        - {key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"]}
  `.replace(/^/gm, '  ')), { trustDomain: 'cluster.local', aliases: ['old.local'] });
  for (const built of [buildHttpRbacFilters(input), buildNetworkRbacFilters(input)]) {
    t.same(built.problems, []);
    for (const f of built.filters) t.doesNotThrow(() => throughEnvoyProtos(f), `${f.name} decodes strictly`);
  }
});

t.test('principals and namespaces of a federated trust domain match its workloads only, never the own domain\'s', async (t) => {
  const input = inputFor(doc('west', '  rules:\n  - from:\n    - source: {principals: ["west.example/ns/pay/sa/api"]}\n    - source: {namespaces: ["orders"]}\n'),
    { trustDomain: 'east.example', aliases: [] });
  const built = buildHttpRbacFilters(input);
  t.same(built.problems, []);
  const chain = built.filters.map((f) => throughEnvoyProtos(f));
  const from = (principal: string) => evaluateRbacChain(chain, { sourcePrincipal: principal, sourceIp: '10.9.0.1', destinationIp: '10.0.0.1', destinationPort: 8080, http: { method: 'GET', path: '/', host: 'a', headers: {} } }).allowed;
  t.equal(from('spiffe://west.example/ns/pay/sa/api'), true, 'the west principal');
  t.equal(from('spiffe://east.example/ns/pay/sa/api'), false, 'the same path in the own trust domain is another identity');
  t.equal(from('spiffe://west.example/ns/pay/sa/other'), false);
  t.equal(from('spiffe://west.example/ns/orders/sa/any'), true, 'source.namespaces matches the namespace in any trust domain, as Istio does');
});
