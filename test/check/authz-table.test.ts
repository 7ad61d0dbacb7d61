/**
 * AuthorizationPolicy semantics end to end, one table: (policies, workload, port kind, request)
 * → allowed or denied, and by which policy. Each case goes the way a proxy's config goes:
 * YAML → validated snapshot → the policies attached to the workload → the RBAC filters of an
 * HTTP or a TCP chain → encoded and strictly decoded against Envoy's protos → evaluated with
 * Envoy's semantics. Cases follow what Istio's own builder tests
 * (pilot/pkg/security/authz/builder/testdata) and the AuthorizationPolicy reference
 * (istio/api security/v1beta1/authorization_policy.proto, istio.io "Authorization Policy",
 * "Authorization on TCP traffic", "Dry run") check.
 */
import t, { type Test } from 'tap';
import { snapshotOf, yaml } from '../config/helpers.js';
import { authorizationFor } from '../../src/mesh/authorization-policy.js';
import { buildHttpRbacFilters, buildNetworkRbacFilters } from '../../src/xds/generators/authz/build-rbac.js';
import { evaluateRbacChain, type ChainVerdict, type RbacRequest } from '../../src/check/rbac-engine.js';
import { throughEnvoyProtos } from './rbac-wire.js';

const ROOT = 'istio-system';
const HTTPBIN = { namespace: 'foo', labels: { app: 'httpbin', version: 'v1' } };

/** A SPIFFE ID as the peer certificate carries it. */
const id = (ns: string, sa: string, td = 'cluster.local'): string => `spiffe://${td}/ns/${ns}/sa/${sa}`;
const SLEEP = id('foo', 'sleep');

function ap(name: string, spec: string, ns = 'foo', annotations = ''): string {
  return yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata:
      name: ${name}
      namespace: ${ns}
  ` + (annotations === '' ? '' : `  annotations: ${annotations}\n`) + spec.replace(/^\n/, '');
}

interface Req {
  /** The client's SPIFFE ID; absent for plaintext. */
  from?: string;
  ip?: string;
  remoteIp?: string;
  port?: number;
  destIp?: string;
  sni?: string;
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
}

/** `allow` / `deny`, optionally `:<policy>` the verdict must name (the matched policy). */
type Expect = string;

interface Case {
  name: string;
  policies: string[];
  kind: 'http' | 'tcp';
  requests: [Req, Expect][];
  workload?: { namespace: string; labels: Record<string, string> };
  mesh?: { trustDomain: string; aliases: string[] };
  /** Extra assertions on one request's verdict (index into requests). */
  check?: (verdicts: ChainVerdict[], t: Test) => void;
}

function request(r: Req, kind: 'http' | 'tcp'): RbacRequest {
  const out: RbacRequest = { sourceIp: r.ip ?? '10.0.0.9', destinationIp: r.destIp ?? '10.0.0.1', destinationPort: r.port ?? 8080 };
  if (r.from !== undefined) out.sourcePrincipal = r.from;
  if (r.remoteIp !== undefined) out.remoteIp = r.remoteIp;
  if (r.sni !== undefined) out.sni = r.sni;
  if (kind === 'http') out.http = { method: r.method ?? 'GET', path: r.path ?? '/', host: r.host ?? 'httpbin.foo.svc.cluster.local', headers: r.headers ?? {} };
  return out;
}

const cases: Case[] = [
  {
    name: 'no policy: no RBAC filter, every request allowed',
    policies: [],
    kind: 'http',
    requests: [[{}, 'allow'], [{ from: SLEEP, method: 'DELETE' }, 'allow']],
  },
  {
    name: 'ALLOW with an empty spec allows nothing (allow-nothing; builder allow-nil-rule)',
    policies: [ap('allow-nothing', 'spec: {}\n')],
    kind: 'http',
    requests: [[{}, 'deny'], [{ from: SLEEP }, 'deny']],
  },
  {
    name: 'ALLOW with an empty spec allows nothing on TCP either',
    policies: [ap('allow-nothing', 'spec: {}\n')],
    kind: 'tcp',
    requests: [[{ from: SLEEP }, 'deny']],
  },
  {
    name: 'ALLOW with one empty rule allows everything (allow-all; builder allow-empty-rule)',
    policies: [ap('allow-all', 'spec:\n  rules:\n  - {}\n')],
    kind: 'http',
    requests: [[{}, 'allow:ns[foo]-policy[allow-all]-rule[0]'], [{ from: SLEEP, method: 'POST' }, 'allow:ns[foo]-policy[allow-all]-rule[0]']],
  },
  {
    name: 'DENY with one empty rule denies everything (builder deny-empty-rule)',
    policies: [ap('deny-all', 'spec:\n  action: DENY\n  rules:\n  - {}\n')],
    kind: 'tcp',
    requests: [[{}, 'deny:ns[foo]-policy[deny-all]-rule[0]'], [{ from: SLEEP }, 'deny:ns[foo]-policy[deny-all]-rule[0]']],
  },
  {
    name: 'the reference ALLOW example: principal or namespace, GET /info* or POST /data',
    policies: [ap('httpbin', yaml`
      spec:
        action: ALLOW
        rules:
        - from:
          - source:
              principals: ["cluster.local/ns/default/sa/sleep"]
          - source:
              namespaces: ["test"]
          to:
          - operation:
              methods: ["GET"]
              paths: ["/info*"]
          - operation:
              methods: ["POST"]
              paths: ["/data"]
    `)],
    kind: 'http',
    requests: [
      [{ from: id('default', 'sleep'), path: '/info' }, 'allow:ns[foo]-policy[httpbin]-rule[0]'],
      [{ from: id('default', 'sleep'), path: '/info/more?q=1' }, 'allow'],
      [{ from: id('default', 'sleep'), method: 'POST', path: '/data' }, 'allow'],
      [{ from: id('default', 'sleep'), method: 'POST', path: '/info' }, 'deny'],
      [{ from: id('default', 'sleep'), method: 'DELETE', path: '/data' }, 'deny'],
      [{ from: id('test', 'anyone'), method: 'POST', path: '/data' }, 'allow'],
      [{ from: id('prod', 'sleep'), path: '/info' }, 'deny'],
      [{ path: '/info' }, 'deny'],
    ],
  },
  {
    name: 'the reference DENY example: no POST from namespace dev; others unaffected',
    policies: [ap('httpbin', yaml`
      spec:
        action: DENY
        rules:
        - from:
          - source:
              namespaces: ["dev"]
          to:
          - operation:
              methods: ["POST"]
    `)],
    kind: 'http',
    requests: [
      [{ from: id('dev', 'x'), method: 'POST' }, 'deny:ns[foo]-policy[httpbin]-rule[0]'],
      [{ from: id('dev', 'x'), method: 'GET' }, 'allow'],
      [{ from: id('prod', 'x'), method: 'POST' }, 'allow'],
      [{ method: 'POST' }, 'allow'],
      [{ from: id('develop', 'x'), method: 'POST' }, 'allow'],
    ],
  },
  {
    name: 'the reference DENY POST on port 8080, on an HTTP port',
    policies: [ap('httpbin', 'spec:\n  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: ["POST"]\n        ports: ["8080"]\n')],
    kind: 'http',
    requests: [[{ method: 'POST', port: 8080 }, 'deny'], [{ method: 'GET', port: 8080 }, 'allow'], [{ method: 'POST', port: 9090 }, 'allow']],
  },
  {
    name: 'the same DENY on a TCP port: the method cannot be seen, so every connection to 8080 is denied',
    policies: [ap('httpbin', 'spec:\n  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: ["POST"]\n        ports: ["8080"]\n')],
    kind: 'tcp',
    requests: [[{ port: 8080 }, 'deny:ns[foo]-policy[httpbin]-rule[0]'], [{ port: 9090 }, 'allow']],
  },
  {
    name: 'DENY with only HTTP attributes denies all TCP traffic (builder deny-both-http-tcp)',
    policies: [ap('httpbin-deny', yaml`
      spec:
        action: DENY
        rules:
        - to:
          - operation:
              methods: ["GET"]
        - from:
          - source:
              requestPrincipals: ["id-1"]
          to:
          - operation:
              ports: ["80"]
    `)],
    kind: 'tcp',
    requests: [[{ port: 9090, from: SLEEP }, 'deny:ns[foo]-policy[httpbin-deny]-rule[0]'], [{ port: 80 }, 'deny']],
  },
  {
    name: 'ALLOW with only HTTP attributes matches nothing on TCP (builder allow-only-http)',
    policies: [ap('httpbin', 'spec:\n  rules:\n  - to:\n    - operation:\n        methods: ["GET"]\n        paths: ["/info"]\n')],
    kind: 'tcp',
    requests: [[{ from: SLEEP }, 'deny'], [{}, 'deny']],
  },
  {
    name: 'ALLOW with HTTP and TCP rules: on TCP only the rule without HTTP fields applies (builder allow-both-http-tcp)',
    policies: [ap('httpbin', yaml`
      spec:
        rules:
        - to:
          - operation: {methods: ["GET"]}
        - from:
          - source: {principals: ["cluster.local/ns/foo/sa/sleep"]}
          to:
          - operation: {ports: ["8080"]}
        - from:
          - source: {principals: ["cluster.local/ns/foo/sa/sleep"]}
          to:
          - operation: {ports: ["9090"], methods: ["GET"]}
    `)],
    kind: 'tcp',
    requests: [
      [{ from: SLEEP, port: 8080 }, 'allow:ns[foo]-policy[httpbin]-rule[1]'],
      [{ from: SLEEP, port: 9090 }, 'deny'],
      [{ from: id('foo', 'other'), port: 8080 }, 'deny'],
    ],
  },
  {
    name: 'DENY is evaluated before ALLOW (builder deny-and-allow)',
    policies: [
      ap('allow-foo', 'spec:\n  rules:\n  - from:\n    - source: {namespaces: ["foo"]}\n'),
      ap('deny-admin', 'spec:\n  action: DENY\n  rules:\n  - to:\n    - operation: {paths: ["/admin*"]}\n'),
    ],
    kind: 'http',
    requests: [
      [{ from: SLEEP, path: '/admin/users' }, 'deny:ns[foo]-policy[deny-admin]-rule[0]'],
      [{ from: SLEEP, path: '/status' }, 'allow:ns[foo]-policy[allow-foo]-rule[0]'],
      [{ from: id('bar', 'x'), path: '/status' }, 'deny'],
    ],
  },
  {
    name: 'several ALLOW policies, mesh-wide and namespace: one match is enough (builder multiple-policies)',
    policies: [
      ap('mesh-health', 'spec:\n  rules:\n  - to:\n    - operation: {paths: ["/healthz"]}\n', ROOT),
      ap('from-bar', 'spec:\n  rules:\n  - from:\n    - source: {namespaces: ["bar"]}\n'),
      ap('other-app', 'spec:\n  selector:\n    matchLabels: {app: other}\n  rules:\n  - {}\n'),
    ],
    kind: 'http',
    requests: [
      [{ path: '/healthz' }, 'allow:ns[istio-system]-policy[mesh-health]-rule[0]'],
      [{ from: id('bar', 'x'), path: '/x' }, 'allow:ns[foo]-policy[from-bar]-rule[0]'],
      [{ from: SLEEP, path: '/x' }, 'deny'],
    ],
  },
  {
    name: 'AUDIT marks requests and never changes the verdict (builder audit-full-rule)',
    policies: [
      ap('audit-profile', 'spec:\n  action: AUDIT\n  rules:\n  - to:\n    - operation: {methods: ["GET"], paths: ["/user/profile/*"]}\n'),
      ap('public', 'spec:\n  rules:\n  - to:\n    - operation: {paths: ["/public*"]}\n'),
    ],
    kind: 'http',
    requests: [
      [{ path: '/user/profile/1' }, 'deny'],
      [{ path: '/public/x' }, 'allow:ns[foo]-policy[public]-rule[0]'],
    ],
    check: (v, t) => {
      t.same(v[0]!.filters[0]!.enforced, { action: 'LOG', allowed: true, policy: 'ns[foo]-policy[audit-profile]-rule[0]' }, 'the AUDIT filter marks the request');
      t.same(v[1]!.filters[0]!.enforced, { action: 'LOG', allowed: true }, 'and not this one');
    },
  },
  {
    name: 'AUDIT alone allows everything',
    policies: [ap('audit-all', 'spec:\n  action: AUDIT\n  rules:\n  - {}\n')],
    kind: 'tcp',
    requests: [[{}, 'allow']],
  },
  {
    name: 'dry-run policies are evaluated as shadow rules and enforce nothing (builder dry-run-allow-and-deny)',
    policies: [
      ap('dry-deny', 'spec:\n  action: DENY\n  rules:\n  - to:\n    - operation: {paths: ["/headers"]}\n', 'foo', '{"istio.io/dry-run": "true"}'),
      ap('dry-allow', 'spec:\n  rules:\n  - to:\n    - operation: {paths: ["/ip"]}\n', 'foo', '{"istio.io/dry-run": "true"}'),
    ],
    kind: 'http',
    requests: [[{ path: '/headers' }, 'allow'], [{ path: '/anything' }, 'allow']],
    check: (v, t) => {
      t.same(v[0]!.filters[0]!.shadow, { action: 'DENY', allowed: false, policy: 'ns[foo]-policy[dry-deny]-rule[0]' }, 'the shadow DENY would have denied');
      t.same(v[1]!.filters[1]!.shadow, { action: 'ALLOW', allowed: false }, 'the shadow ALLOW would have denied');
    },
  },
  {
    name: 'principals with trust domain aliases: cluster.local means every trust domain of the mesh (builder trust-domain-one-alias)',
    mesh: { trustDomain: 'td1', aliases: ['cluster.local'] },
    policies: [ap('httpbin', 'spec:\n  rules:\n  - from:\n    - source: {principals: ["cluster.local/ns/foo/sa/sleep"]}\n')],
    kind: 'http',
    requests: [
      [{ from: id('foo', 'sleep', 'td1') }, 'allow'],
      [{ from: id('foo', 'sleep', 'cluster.local') }, 'allow'],
      [{ from: id('foo', 'sleep', 'other-td') }, 'deny'],
    ],
  },
  {
    name: 'an alias in a principal is migrated to the current trust domain (builder trust-domain-aliases-in-source-principal)',
    mesh: { trustDomain: 'new-td', aliases: ['old-td', 'some-trustdomain'] },
    policies: [ap('httpbin', 'spec:\n  rules:\n  - from:\n    - source: {principals: ["old-td/ns/foo/sa/sleep", "unrelated-td/ns/foo/sa/sleep"]}\n')],
    kind: 'tcp',
    requests: [
      [{ from: id('foo', 'sleep', 'new-td') }, 'allow'],
      [{ from: id('foo', 'sleep', 'some-trustdomain') }, 'allow'],
      [{ from: id('foo', 'sleep', 'unrelated-td') }, 'allow'],
      [{ from: id('foo', 'sleep', 'third-td') }, 'deny'],
    ],
  },
  {
    name: 'a trust domain wildcard in a principal is kept for the domains it covers (builder trust-domain-wildcard-in-principal)',
    mesh: { trustDomain: 'td1', aliases: ['foobar'] },
    policies: [ap('httpbin', 'spec:\n  rules:\n  - from:\n    - source: {principals: ["*td1/ns/foo/sa/sleep"]}\n')],
    kind: 'http',
    requests: [
      [{ from: id('foo', 'sleep', 'td1') }, 'allow'],
      [{ from: id('foo', 'sleep', 'old-td1') }, 'allow'],
      [{ from: id('foo', 'sleep', 'foobar') }, 'allow'],
      [{ from: id('foo', 'sleep', 'other') }, 'deny'],
    ],
  },
  {
    name: 'string matching on principals: exact, prefix*, *suffix, presence * (which needs mTLS)',
    policies: [
      ap('prefix', 'spec:\n  rules:\n  - from:\n    - source: {principals: ["cluster.local/ns/bar/*"]}\n'),
      ap('suffix', 'spec:\n  rules:\n  - from:\n    - source: {principals: ["*/sa/admin"]}\n'),
      ap('any-peer', 'spec:\n  rules:\n  - from:\n    - source: {principals: ["*"]}\n    to:\n    - operation: {paths: ["/peer"]}\n'),
    ],
    kind: 'http',
    requests: [
      [{ from: id('bar', 'x'), path: '/x' }, 'allow:ns[foo]-policy[prefix]-rule[0]'],
      [{ from: id('baz', 'admin'), path: '/x' }, 'allow:ns[foo]-policy[suffix]-rule[0]'],
      [{ from: id('baz', 'x'), path: '/x' }, 'deny'],
      [{ from: id('baz', 'x'), path: '/peer' }, 'allow:ns[foo]-policy[any-peer]-rule[0]'],
      [{ path: '/peer' }, 'deny'],
    ],
  },
  {
    name: 'namespaces with wildcards; plaintext has no namespace',
    policies: [ap('ns', 'spec:\n  rules:\n  - from:\n    - source: {namespaces: ["team-*", "*-prod", "exact"]}\n')],
    kind: 'tcp',
    requests: [
      [{ from: id('team-a', 'x') }, 'allow'],
      [{ from: id('shop-prod', 'x') }, 'allow'],
      [{ from: id('exact', 'x') }, 'allow'],
      [{ from: id('exactly', 'x') }, 'deny'],
      [{}, 'deny'],
    ],
  },
  {
    name: 'DENY with notNamespaces also denies plaintext (a request without a namespace is not in foo)',
    policies: [ap('only-foo', 'spec:\n  action: DENY\n  rules:\n  - from:\n    - source: {notNamespaces: ["foo"]}\n')],
    kind: 'http',
    requests: [[{ from: SLEEP }, 'allow'], [{ from: id('bar', 'x') }, 'deny'], [{}, 'deny:ns[foo]-policy[only-foo]-rule[0]']],
  },
  {
    name: 'ipBlocks are the peer address, remoteIpBlocks the original client address',
    policies: [
      ap('peers', 'spec:\n  rules:\n  - from:\n    - source: {ipBlocks: ["10.1.0.0/16"], notIpBlocks: ["10.1.2.3"]}\n'),
      ap('clients', 'spec:\n  rules:\n  - from:\n    - source: {remoteIpBlocks: ["203.0.113.0/24"]}\n'),
    ],
    kind: 'tcp',
    requests: [
      [{ ip: '10.1.5.5' }, 'allow:ns[foo]-policy[peers]-rule[0]'],
      [{ ip: '10.1.5.5', remoteIp: '198.51.100.1' }, 'allow:ns[foo]-policy[peers]-rule[0]'],
      [{ ip: '10.9.9.9', remoteIp: '10.1.5.5' }, 'deny'],
      [{ ip: '10.1.2.3' }, 'deny'],
      [{ ip: '10.2.0.1' }, 'deny'],
      [{ ip: '10.9.9.9', remoteIp: '203.0.113.9' }, 'allow:ns[foo]-policy[clients]-rule[0]'],
      [{ ip: '203.0.113.9', remoteIp: '198.51.100.1' }, 'deny'],
    ],
  },
  {
    name: 'hosts are case-insensitive; ports and notPorts are the port the connection arrived on',
    policies: [ap('hosts', yaml`
      spec:
        rules:
        - to:
          - operation:
              hosts: ["*.example.com", "httpbin"]
              notHosts: ["admin.example.com"]
              notPorts: ["9000"]
    `)],
    kind: 'http',
    requests: [
      [{ host: 'API.Example.com' }, 'allow'],
      [{ host: 'httpbin' }, 'allow'],
      [{ host: 'httpbin:8000' }, 'deny'],
      [{ host: 'admin.example.com' }, 'deny'],
      [{ host: 'api.example.com', port: 9000 }, 'deny'],
    ],
  },
  {
    name: 'paths: exact, prefix, suffix, presence, templates; the query string is ignored',
    policies: [ap('paths', yaml`
      spec:
        rules:
        - to:
          - operation:
              paths: ["/exact", "/prefix/*", "*/suffix", "/users/{*}/profile", "/files/{**}"]
        - to:
          - operation:
              methods: ["OPTIONS"]
              paths: ["*"]
    `)],
    kind: 'http',
    requests: [
      [{ path: '/exact?x=1' }, 'allow:ns[foo]-policy[paths]-rule[0]'],
      [{ path: '/exact/more' }, 'deny'],
      [{ path: '/prefix/a/b' }, 'allow'],
      [{ path: '/a/b/suffix' }, 'allow'],
      [{ path: '/users/42/profile' }, 'allow'],
      [{ path: '/users/4/2/profile' }, 'deny'],
      [{ path: '/files/a/b/c.txt' }, 'allow'],
      [{ method: 'OPTIONS', path: '/anything' }, 'allow:ns[foo]-policy[paths]-rule[1]'],
    ],
  },
  {
    name: 'when: request headers with values and notValues; a missing header matches no value',
    policies: [ap('headers', 'spec:\n  rules:\n  - when:\n    - key: request.headers[X-Version]\n      values: ["v1*"]\n      notValues: ["v1-beta"]\n')],
    kind: 'http',
    requests: [
      [{ headers: { 'x-version': 'v1.2' } }, 'allow'],
      [{ headers: { 'x-version': 'v1-beta' } }, 'deny'],
      [{ headers: { 'x-version': 'v2' } }, 'deny'],
      [{}, 'deny'],
    ],
  },
  {
    name: 'when: destination.port, destination.ip, connection.sni, source.ip on TCP',
    policies: [ap('conn', yaml`
      spec:
        rules:
        - when:
          - key: destination.port
            values: ["5432"]
          - key: destination.ip
            values: ["10.0.0.0/24"]
          - key: connection.sni
            notValues: ["*.internal"]
          - key: source.ip
            notValues: ["10.0.0.66"]
    `)],
    kind: 'tcp',
    requests: [
      [{ port: 5432 }, 'allow'],
      [{ port: 5432, sni: 'db.example.com' }, 'allow'],
      [{ port: 5432, sni: 'db.internal' }, 'deny'],
      [{ port: 5433 }, 'deny'],
      [{ port: 5432, destIp: '10.0.1.1' }, 'deny'],
      [{ port: 5432, ip: '10.0.0.66' }, 'deny'],
    ],
  },
  {
    name: 'serviceAccounts (default namespace: the policy\'s), trustDomains, source.serviceAccount',
    mesh: { trustDomain: 'cluster.local', aliases: ['old.local'] },
    policies: [
      ap('sa', 'spec:\n  rules:\n  - from:\n    - source: {serviceAccounts: ["sleep", "bar/client"]}\n'),
      ap('td', 'spec:\n  rules:\n  - from:\n    - source: {trustDomains: ["cluster.local"]}\n    to:\n    - operation: {paths: ["/td"]}\n'),
      ap('when-sa', 'spec:\n  rules:\n  - when:\n    - key: source.serviceAccount\n      values: ["baz/robot"]\n'),
    ],
    kind: 'http',
    requests: [
      [{ from: SLEEP }, 'allow:ns[foo]-policy[sa]-rule[0]'],
      [{ from: id('bar', 'client') }, 'allow'],
      [{ from: id('bar', 'sleep') }, 'deny'],
      [{ from: id('bar', 'sleep-2') }, 'deny'],
      [{ from: id('baz', 'robot') }, 'allow:ns[foo]-policy[when-sa]-rule[0]'],
      [{ from: id('baz', 'x', 'old.local'), path: '/td' }, 'allow:ns[foo]-policy[td]-rule[0]'],
      [{ from: id('baz', 'x', 'elsewhere'), path: '/td' }, 'deny'],
    ],
  },
  {
    name: 'without JWT authentication, requestPrincipals never match and notRequestPrincipals always do',
    policies: [
      ap('need-jwt', 'spec:\n  rules:\n  - from:\n    - source: {requestPrincipals: ["*"]}\n'),
      ap('require-jwt', 'spec:\n  action: DENY\n  rules:\n  - from:\n    - source: {notRequestPrincipals: ["*"]}\n    to:\n    - operation: {paths: ["/secure*"]}\n'),
    ],
    kind: 'http',
    requests: [[{ from: SLEEP, path: '/secure/x' }, 'deny:ns[foo]-policy[require-jwt]-rule[0]'], [{ from: SLEEP, path: '/x' }, 'deny']],
  },
  {
    name: 'CUSTOM without an external authorizer denies what its rules match, as istiod does for an unknown provider',
    policies: [ap('ext', 'spec:\n  action: CUSTOM\n  provider: {name: opa}\n  rules:\n  - to:\n    - operation: {paths: ["/admin*"]}\n')],
    kind: 'http',
    requests: [
      [{ path: '/admin/x' }, 'deny:istio-ext-authz-opa-ns[foo]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action'],
      [{ path: '/public' }, 'allow'],
    ],
  },
  {
    name: 'scope: another namespace, a non-matching selector and targetRef policies do not apply',
    policies: [
      ap('other-ns', 'spec:\n  action: DENY\n  rules:\n  - {}\n', 'bar'),
      ap('v2-only', 'spec:\n  selector:\n    matchLabels: {version: v2}\n  action: DENY\n  rules:\n  - {}\n', ROOT),
      ap('gateway', 'spec:\n  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: gw}\n  action: DENY\n  rules:\n  - {}\n'),
      ap('v1-mesh', 'spec:\n  selector:\n    matchLabels: {version: v1}\n  action: DENY\n  rules:\n  - to:\n    - operation: {ports: ["1"]}\n', ROOT),
    ],
    kind: 'tcp',
    requests: [[{ port: 8080 }, 'allow'], [{ port: 1 }, 'deny:ns[istio-system]-policy[v1-mesh]-rule[0]']],
  },
];

for (const c of cases) {
  t.test(`${c.kind.toUpperCase()}: ${c.name}`, async (t) => {
    const snap = snapshotOf({ 'authz.yaml': c.policies.join('---\n') });
    t.same(snap.messages.filter((m) => m.level === 'error'), [], 'the policies are valid');
    const authorization = authorizationFor(snap.authorizationPolicies, ROOT, c.workload ?? HTTPBIN);
    const input = { authorization, trustDomain: c.mesh?.trustDomain ?? 'cluster.local', trustDomainAliases: c.mesh?.aliases ?? [] };
    const built = c.kind === 'http' ? buildHttpRbacFilters(input) : buildNetworkRbacFilters(input);
    t.same(built.problems, [], 'everything compiled');
    if (c.policies.length === 0) t.same(built.filters, [], 'no policy, no filter');
    const onTheWire = built.filters.map((f) => throughEnvoyProtos(f));
    const verdicts: ChainVerdict[] = [];
    for (const [req, expect] of c.requests) {
      const v = evaluateRbacChain(onTheWire, request(req, c.kind));
      verdicts.push(v);
      const [want, policy] = expect.split(/:(.*)/s) as [string, string | undefined];
      const label = `${JSON.stringify(req)} → ${expect}`;
      t.equal(v.allowed ? 'allow' : 'deny', want, label);
      if (policy !== undefined) t.equal(v.decidedBy?.policy, policy, `${label}: decided by ${policy}`);
    }
    c.check?.(verdicts, t);
  });
}
