/**
 * AuthorizationPolicy documents → Istio's validation messages at the offending line, and valid
 * ones → the model (what later compiles to Envoy RBAC). Messages are Istio's
 * (pkg/config/validation/validation.go ValidateAuthorizationPolicy, pkg/config/security).
 */
import t from 'tap';
import { snapshotOf, yaml } from './helpers.js';

const HEAD = yaml`
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata:
    name: ap
    namespace: shop
`; // 5 lines, spec starts on line 6

interface Row {
  name: string;
  text: string;
  errors: [line: number, message: string][];
  warnings?: [line: number, message: string][];
}

const DENY_ALL_TCP = 'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port';

const rows: Row[] = [
  {
    name: 'empty from and to lists',
    text: HEAD + yaml`
      spec:
        rules:
        - from: []
          to: []
    `,
    errors: [[8, '`from` must not be empty, found at rule 0'], [9, '`to` must not be empty, found at rule 0']],
  },
  {
    name: 'nil rule, nil from, nil source, nil operation',
    text: HEAD + yaml`
      spec:
        rules:
        - null
        - from:
          - null
          - {}
          to:
          - operation: null
    `,
    errors: [
      [8, '`rule` must not be nil, found at rule 0'],
      [10, '`from` must not be nil, found at rule 1'],
      [11, '`from.source` must not be nil, found at rule 1'],
      [13, '`to.operation` must not be nil, found at rule 1'],
    ],
  },
  {
    name: 'empty source and operation',
    text: HEAD + yaml`
      spec:
        rules:
        - from:
          - source: {}
          to:
          - operation: {}
    `,
    errors: [[9, '`from.source` must not be empty, found at rule 0'], [11, '`to.operation` must not be empty, found at rule 0']],
  },
  {
    name: 'bad IP blocks and CIDRs, each at its own line',
    text: HEAD + yaml`
      spec:
        rules:
        - from:
          - source:
              ipBlocks:
              - 10.0.0.256
              - 10.0.0.0/33
              notIpBlocks: ["fe80::1%eth0/64"]
              remoteIpBlocks: ["010.1.1.1/8"]
              notRemoteIpBlocks: ["1.2.3.4/"]
    `,
    errors: [
      [11, 'bad IP address (10.0.0.256)'],
      [12, 'bad CIDR range (10.0.0.0/33): netip.ParsePrefix("10.0.0.0/33"): prefix length out of range'],
      [13, 'bad CIDR range (fe80::1%eth0/64): netip.ParsePrefix("fe80::1%eth0/64"): IPv6 zones cannot be present in a prefix'],
      [14, 'bad CIDR range (010.1.1.1/8): netip.ParsePrefix("010.1.1.1/8"): ParseAddr("010.1.1.1"): IPv4 field has octet with leading zero'],
      [15, 'bad CIDR range (1.2.3.4/): netip.ParsePrefix("1.2.3.4/"): bad bits after slash: ""'],
    ],
  },
  {
    name: 'empty values and bad ports',
    text: HEAD + yaml`
      spec:
        rules:
        - from:
          - source:
              principals: ["cluster.local/ns/a/sa/b", ""]
          to:
          - operation:
              ports: ["8080", "65536", "http"]
              methods: [""]
    `,
    errors: [
      [10, 'empty value not allowed, found in Principals'],
      [13, 'bad port (65536): <nil>'],
      [13, 'bad port (http): strconv.ParseUint: parsing "http": invalid syntax'],
      [14, 'empty value not allowed, found in Methods'],
    ],
  },
  {
    name: 'serviceAccounts with principals, bad service accounts and trust domains',
    text: HEAD + yaml`
      spec:
        rules:
        - from:
          - source:
              principals: ["cluster.local/ns/a/sa/b"]
              serviceAccounts: ["a/b/c"]
          - source:
              notServiceAccounts: ["sa*"]
              trustDomains: ["a*b", "td/x"]
    `,
    errors: [
      [9, 'cannot set serviceAccounts with namespaces or principals, found at rule 0'],
      [11, 'expected format \'serviceAccount\' or \'namespace/serviceAccount\', found "a/b/c" in ServiceAccounts'],
      [13, 'wildcard not allowed, found in NotServiceAccounts'],
      [14, 'wildcard is only allowed at the start or end, found in TrustDomains: "a*b"'],
    ],
  },
  {
    name: 'when: unknown key, empty key, no values, bad values, bad map key',
    text: HEAD + yaml`
      spec:
        rules:
        - when:
          - key: source.user
            values: ["a"]
          - key: ""
            values: ["a"]
          - key: source.ip
          - key: destination.port
            values: ["80", "x"]
            notValues: ["10.0.0.1"]
          - key: request.headers
            values: ["a"]
          - key: destination.labels[app]
            values: ["a"]
          - key: source.ip
            notValues: ["1.1.1.1/40"]
    `,
    errors: [
      [9, 'invalid `value` for `key` source.user: unknown attribute: source.user'],
      [11, '`key` must not be empty'],
      [13, 'at least one of `values` or `notValues` must be set for key source.ip'],
      [15, 'invalid `value` for `key` destination.port: bad port (x): strconv.ParseUint: parsing "x": invalid syntax'],
      [16, 'invalid `notValue` for `key` destination.port: bad port (10.0.0.1): strconv.ParseUint: parsing "10.0.0.1": invalid syntax'],
      [17, 'invalid `value` for `key` request.headers: bad key (request.headers): should have format a[b]'],
      [19, 'invalid `value` for `key` destination.labels[app]: attribute destination.labels[app] is replaced by the workload selector'],
      [22, 'invalid `notValue` for `key` source.ip: bad CIDR range (1.1.1.1/40): netip.ParsePrefix("1.1.1.1/40"): prefix length out of range'],
    ],
  },
  {
    name: 'DENY without rules is refused (ALLOW without rules is allow-nothing)',
    text: HEAD + yaml`
      spec:
        action: DENY
    `,
    errors: [[6, 'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request']],
  },
  {
    name: 'DENY with only HTTP attributes warns that TCP ports are denied',
    text: HEAD + yaml`
      spec:
        action: DENY
        rules:
        - to:
          - operation: {methods: [POST]}
        - from:
          - source: {requestPrincipals: ["*"]}
        - to:
          - operation: {methods: [POST], ports: ["8080"]}
    `,
    errors: [],
    warnings: [[9, DENY_ALL_TCP], [11, DENY_ALL_TCP]],
  },
  {
    name: 'path templates: {**} must come last, no stray braces',
    text: HEAD + yaml`
      spec:
        rules:
        - to:
          - operation:
              paths: ["/a/{**}/b/{*}", "/ok/{*}/x/{**}"]
              notPaths: ["/a/{x}"]
    `,
    errors: [
      [10, 'invalid or unsupported path a/{**}/b/{*}, found in Paths. {**} is not the last operator'],
      [11, 'invalid or unsupported path a/{x}, found in NotPaths. Contains \'{\' or \'}\' beyond a supported path template'],
    ],
  },
  {
    name: 'selector and targetRef together; bad targetRef',
    text: HEAD + yaml`
      spec:
        selector:
          matchLabels: {app: web}
        targetRef:
          kind: Deployment
          name: ""
          namespace: other
    `,
    errors: [
      [6, 'only one of targetRefs or workloadSelector can be set'],
      [9, 'targetRef name must be set'],
      [9, 'targetRef must be to one of [core/v1/Service networking.istio.io/v1/ServiceEntry gateway.networking.k8s.io/v1/Gateway gateway.networking.k8s.io/v1/GatewayClass] but was /Deployment'],
      [12, 'targetRef namespace must not be set; cross namespace referencing is not supported'],
    ],
  },
  {
    name: 'provider with a non-CUSTOM action; CUSTOM without rules',
    text: HEAD + yaml`
      spec:
        action: ALLOW
        provider: {name: ext}
      ---
    ` + HEAD.replace('name: ap', 'name: custom') + yaml`
      spec:
        action: CUSTOM
        provider: {name: ext}
    `,
    errors: [
      [8, '`provider` must not be with non CUSTOM action, found ALLOW'],
      [15, 'CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request'],
    ],
  },
  {
    name: 'CUSTOM supports no identity attributes',
    text: HEAD + yaml`
      spec:
        action: CUSTOM
        provider: {name: ext}
        rules:
        - from:
          - source: {namespaces: [a], requestPrincipals: ["*"]}
          when:
          - key: source.principal
            values: [x]
    `,
    errors: [
      [10, 'From.Namespaces is currently not supported with CUSTOM action'],
      [10, 'From.RequestPrincipals is currently not supported with CUSTOM action'],
      [10, 'source.principal is currently not supported with CUSTOM action'],
    ],
  },
  {
    name: 'dry-run: only ALLOW/DENY, only Go booleans',
    text: HEAD.replace('namespace: shop', 'namespace: shop\n  annotations: {"istio.io/dry-run": "yes"}') + yaml`
      spec:
        rules: [{}]
      ---
    ` + HEAD.replace('namespace: shop', 'namespace: shop\n  annotations: {"istio.io/dry-run": "true"}').replace('name: ap', 'name: audit') + yaml`
      spec:
        action: AUDIT
        rules: [{}]
    `,
    errors: [
      [6, 'shop/ap has annotation istio.io/dry-run with invalid value (yes): strconv.ParseBool: parsing "yes": invalid syntax'],
      [15, 'the annotation istio.io/dry-run currently only supports action ALLOW/DENY, found action AUDIT in shop/audit'],
    ],
  },
  {
    name: 'unknown fields are errors (a typo would otherwise widen a policy)',
    text: HEAD + yaml`
      spec:
        rules:
        - from:
          - source:
              principal: ["x"]
    `,
    errors: [[10, 'unknown field "principal" in spec.rules[0].from[0].source'], [9, '`from.source` must not be empty, found at rule 0']],
  },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const s = snapshotOf({ 'cfg/ap.yaml': row.text });
    const key = (a: readonly (string | number)[]): string => `${String(a[0]).padStart(4, '0')}${a[1]}`;
    const sorted = (list: (string | number)[][]): (string | number)[][] => [...list].sort((a, b) => (key(a) < key(b) ? -1 : 1));
    const errors = s.messages.filter((m) => m.level === 'error').map((m) => [m.source.line, m.message]);
    t.same(sorted(errors), sorted(row.errors));
    for (const [line, message] of row.warnings ?? []) {
      t.ok(s.messages.some((m) => m.level === 'warning' && m.source.line === line && m.message === message), `warning at ${line}: ${message}`);
    }
    if (row.errors.length > 0) t.equal(s.authorizationPolicies.length, 0, 'an invalid policy never enters the snapshot');
    for (const m of s.messages) t.match(m.resource, /^AuthorizationPolicy\/shop\//);
  });
}

t.test('a full policy reads into the model; the lists keep their order', async (t) => {
  const s = snapshotOf({ 'ap.yaml': HEAD + yaml`
    spec:
      selector:
        matchLabels: {app: web}
      action: DENY
      rules:
      - from:
        - source:
            principals: ["cluster.local/ns/a/sa/b"]
            notNamespaces: ["dev*"]
            ipBlocks: ["10.0.0.0/8"]
        to:
        - operation:
            methods: [GET, HEAD]
            paths: ["/admin*"]
            ports: ["8080"]
        when:
        - key: request.headers[x-user]
          notValues: ["root"]
      - {}
  ` });
  t.same(s.messages.filter((m) => m.level === 'error'), []);
  const ap = s.authorizationPolicies[0]!;
  t.equal(ap.action, 'DENY');
  t.same(ap.selector, { app: 'web' });
  t.equal(ap.dryRun, false);
  t.same(ap.targetRefs, []);
  t.equal(ap.rules.length, 2);
  t.same(ap.rules[0]!.from[0]!.principals, ['cluster.local/ns/a/sa/b']);
  t.same(ap.rules[0]!.from[0]!.notNamespaces, ['dev*']);
  t.same(ap.rules[0]!.from[0]!.ipBlocks, ['10.0.0.0/8']);
  t.same(ap.rules[0]!.to[0]!.methods, ['GET', 'HEAD']);
  t.same(ap.rules[0]!.to[0]!.ports, ['8080']);
  t.same(ap.rules[0]!.when, [{ key: 'request.headers[x-user]', values: [], notValues: ['root'] }]);
  t.same(ap.rules[1], { from: [], to: [], when: [] }, 'an empty rule matches everything');
});

t.test('`spec: {}` is an ALLOW policy with no rules (allow nothing); AUDIT is accepted', async (t) => {
  const s = snapshotOf({ 'ap.yaml': HEAD + 'spec: {}\n---\n' + HEAD.replace('name: ap', 'name: audit') + yaml`
    spec:
      action: AUDIT
      rules:
      - to:
        - operation: {paths: ["/user/profile/*"]}
  ` });
  t.same(s.messages.filter((m) => m.level === 'error'), []);
  const [ap, audit] = s.authorizationPolicies;
  t.equal(ap!.action, 'ALLOW');
  t.same(ap!.rules, []);
  t.equal(audit!.action, 'AUDIT');
});

t.test('what meshd cannot do is a warning on the field, and the policy still loads', async (t) => {
  const s = snapshotOf({ 'ap.yaml': HEAD + yaml`
    spec:
      action: CUSTOM
      provider: {name: opa}
      rules:
      - to:
        - operation: {paths: ["/admin*"]}
    ---
  ` + HEAD.replace('name: ap', 'name: gw') + yaml`
    spec:
      targetRefs:
      - {kind: Gateway, group: gateway.networking.k8s.io, name: ingress}
      rules: [{}]
    ---
  ` + HEAD.replace('name: ap', 'name: jwt') + yaml`
    spec:
      rules:
      - from:
        - source: {requestPrincipals: ["issuer/subject"]}
        when:
        - key: request.auth.claims[group]
          values: [admins]
  ` });
  t.same(s.messages.filter((m) => m.level === 'error'), []);
  t.equal(s.authorizationPolicies.length, 3);
  const warning = (line: number): string | undefined => s.messages.find((m) => m.level === 'warning' && m.source.line === line)?.message;
  t.match(warning(7), /^action CUSTOM needs an external authorizer .* requests matching this policy's rules are denied$/);
  t.match(warning(19), /^targetRef attaches a policy to gateways and waypoints, which meshd does not run.*applies this policy to no workload$/);
  t.match(warning(31), /^requestPrincipals needs JWT request authentication \(RequestAuthentication\), which meshd does not support.*never matches$/);
  t.match(warning(33), /^condition request\.auth\.claims\[group\] needs JWT request authentication/);
  t.equal(s.authorizationPolicies.find((p) => p.meta.name === 'gw')?.targetRefs[0]?.kind, 'Gateway');
  t.equal(s.authorizationPolicies.find((p) => p.meta.name === 'ap')?.provider, 'opa');
});

t.test('an enforced policy loads without a warning; an AUDIT policy says proxyless gRPC leaves it out', async (t) => {
  const s = snapshotOf({ 'ap.yaml': HEAD + 'spec: {}\n' });
  t.same(s.messages, [], 'no "not enforced" warning');
  const audit = snapshotOf({ 'ap.yaml': HEAD + 'spec:\n  action: AUDIT\n  rules: [{}]\n' });
  t.same(audit.messages.map((m) => [m.level, m.source.line, m.message]), [
    ['warning', 1, 'AUDIT is logged by Envoy sidecars (RBAC action LOG); proxyless gRPC servers have no AUDIT action (gRFC A41), so their listeners leave this policy out'],
  ]);
});

t.test('an invalid edit keeps the last good version in force; fixing it applies the new one', async (t) => {
  const good = HEAD + 'spec:\n  action: DENY\n  rules: [{}]\n';
  const v1 = snapshotOf({ 'ap.yaml': good });
  const v2 = snapshotOf({ 'ap.yaml': HEAD + 'spec:\n  action: DENY\n' }, v1);
  t.equal(v2.authorizationPolicies[0], v1.authorizationPolicies[0], 'the very same object stays');
  t.ok(v2.messages.some((m) => m.level === 'warning' && m.message === 'keeping the last good version of AuthorizationPolicy/shop/ap (loaded from ap.yaml:1) until this document is fixed'));
  const v3 = snapshotOf({ 'ap.yaml': HEAD + 'spec:\n  action: DENY\n  rules: [{}, {}]\n' }, v2);
  t.equal(v3.authorizationPolicies[0]?.rules.length, 2);
});

t.test('both served versions load; others are refused with the versions meshd reads', async (t) => {
  const s = snapshotOf({ 'ap.yaml': HEAD.replace('security.istio.io/v1', 'security.istio.io/v1beta1') + 'spec: {}\n---\n' + HEAD.replace('security.istio.io/v1', 'security.istio.io/v1alpha1').replace('name: ap', 'name: old') + 'spec: {}\n' });
  t.equal(s.authorizationPolicies.length, 1);
  t.ok(s.messages.some((m) => m.level === 'error' && m.message === 'no matches for kind "AuthorizationPolicy" in version "security.istio.io/v1alpha1" (meshd reads AuthorizationPolicy as security.istio.io/v1, security.istio.io/v1beta1)'));
});
