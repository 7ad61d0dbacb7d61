/**
 * Bad documents of every kind → Istio's message (verbatim where Istio has one), at the line of
 * the offending field. Each row lists every error the document must produce, in line order.
 */
import t from 'tap';
import { snapshotOf, yaml } from './helpers.js';

interface Row {
  name: string;
  text: string;
  errors: [line: number, message: string][];
  warnings?: [line: number, message: string][];
}

const PA_HEAD = yaml`
  apiVersion: security.istio.io/v1beta1
  kind: PeerAuthentication
  metadata:
    name: p
    namespace: shop
`; // 5 lines, spec starts on line 6

const SE_HEAD = yaml`
  apiVersion: networking.istio.io/v1
  kind: ServiceEntry
  metadata:
    name: s
    namespace: shop
`;

const WE_HEAD = yaml`
  apiVersion: networking.istio.io/v1beta1
  kind: WorkloadEntry
  metadata:
    name: w
    namespace: shop
`;

const rows: Row[] = [
  // --- PeerAuthentication (Istio pkg/config/validation ValidatePeerAuthentication) ---
  {
    name: 'namespace-wide policy with portLevelMtls',
    text: PA_HEAD + yaml`
      spec:
        mtls:
          mode: STRICT
        portLevelMtls:
          8080:
            mode: DISABLE
    `,
    errors: [[9, 'mesh/namespace peer authentication cannot have port level mTLS']],
  },
  {
    name: 'empty portLevelMtls',
    text: PA_HEAD + yaml`
      spec:
        selector:
          matchLabels:
            app: web
        portLevelMtls: {}
    `,
    errors: [[10, 'port level mTLS, if defined, must have at least one element']],
  },
  {
    name: 'port out of range (0 and 65536)',
    text: PA_HEAD + yaml`
      spec:
        selector:
          matchLabels:
            app: web
        portLevelMtls:
          0:
            mode: DISABLE
          65536:
            mode: STRICT
    `,
    errors: [[11, 'port must be in range 1..65535'], [13, 'port must be in range 1..65535']],
  },
  {
    name: 'empty key in selector',
    text: PA_HEAD + yaml`
      spec:
        selector:
          matchLabels:
            "": web
        mtls:
          mode: STRICT
    `,
    errors: [[8, 'empty key is not supported in selector: "=web"']],
  },
  {
    name: 'wildcard in selector key and value',
    text: PA_HEAD + yaml`
      spec:
        selector:
          matchLabels:
            app: "web-*"
            "tier*": front
    `,
    errors: [[9, 'wildcard is not supported in selector: "app=web-*"'], [10, 'wildcard is not supported in selector: "tier*=front"']],
  },
  {
    name: 'selector without labels is a warning only',
    text: PA_HEAD + yaml`
      spec:
        selector: {}
        mtls:
          mode: STRICT
    `,
    errors: [],
    warnings: [[7, 'workload selector specified without labels']],
  },
  {
    name: 'unknown mode value',
    text: PA_HEAD + yaml`
      spec:
        mtls:
          mode: REQUIRED
    `,
    errors: [[8, 'unknown value "REQUIRED" for spec.mtls.mode, expected one of UNSET, DISABLE, PERMISSIVE, STRICT']],
  },
  {
    name: 'lower-case mode is rejected (protobuf enums are case-sensitive)',
    text: PA_HEAD + yaml`
      spec:
        mtls:
          mode: strict
    `,
    errors: [[8, 'unknown value "strict" for spec.mtls.mode, expected one of UNSET, DISABLE, PERMISSIVE, STRICT']],
  },
  {
    name: 'typo in a field name is an unknown field, not a silent UNSET',
    text: PA_HEAD + yaml`
      spec:
        mtls:
          mdoe: STRICT
    `,
    errors: [[8, 'unknown field "mdoe" in spec.mtls']],
  },
  // --- ServiceEntry (ValidateServiceEntry) ---
  {
    name: 'service entry without hosts and ports',
    text: SE_HEAD + yaml`
      spec:
        location: MESH_INTERNAL
    `,
    errors: [[6, 'service entry must have at least one host'], [6, 'service entry must have at least one port (meshd serves services per port)']],
  },
  {
    name: 'duplicate port number and name, bad name, unknown protocol, port 0',
    text: SE_HEAD + yaml`
      spec:
        hosts: [a.example.com]
        resolution: STATIC
        ports:
        - {number: 80, name: http, protocol: HTTP}
        - {number: 80, name: http, protocol: HTTP}
        - {number: 0, name: Bad_Name, protocol: QUIC}
    `,
    errors: [
      [11, 'service entry port name "http" already defined'],
      [11, 'service entry port 80 already defined'],
      [12, 'invalid port name: Bad_Name'],
      [12, 'port number 0 must be in the range 1..65535'],
      [12, 'unsupported protocol: QUIC'],
    ],
  },
  {
    name: 'wildcard-only host and bad hostname',
    text: SE_HEAD + yaml`
      spec:
        hosts:
        - "*"
        - "bad_host.example.com"
        ports:
        - {number: 80, name: http, protocol: HTTP}
    `,
    errors: [[8, 'invalid host *'], [9, 'domain name "bad_host.example.com" invalid (label "bad_host" invalid)']],
  },
  {
    name: 'workloadSelector and endpoints together',
    text: SE_HEAD + yaml`
      spec:
        hosts: [a.example.com]
        resolution: STATIC
        ports:
        - {number: 80, name: http, protocol: HTTP}
        workloadSelector:
          labels:
            app: a
        endpoints:
        - address: 10.0.0.1
    `,
    errors: [[11, 'only one of WorkloadSelector or Endpoints is allowed in Service Entry']],
  },
  {
    name: 'endpoints with resolution NONE',
    text: SE_HEAD + yaml`
      spec:
        hosts: [a.example.com]
        resolution: NONE
        ports:
        - {number: 80, name: http, protocol: HTTP}
        endpoints:
        - address: 10.0.0.1
    `,
    errors: [[11, 'no endpoints should be provided for resolution type none']],
  },
  {
    name: 'STATIC endpoint with a hostname and an undeclared port name',
    text: SE_HEAD + yaml`
      spec:
        hosts: [a.example.com]
        resolution: STATIC
        ports:
        - {number: 80, name: http, protocol: HTTP}
        endpoints:
        - address: db.example.com
          ports:
            grpc: 9000
    `,
    errors: [[12, 'endpoint address "db.example.com" is not a valid IP address'], [14, 'endpoint port 9000 is not defined by the service entry']],
  },
  {
    name: 'CIDR address with DNS resolution and an invalid address',
    text: SE_HEAD + yaml`
      spec:
        hosts: [a.example.com]
        addresses: [10.0.0.0/24, 10.0.0.300]
        resolution: DNS
        ports:
        - {number: 80, name: http, protocol: HTTP}
    `,
    errors: [[8, 'CIDR addresses are allowed only for NONE/STATIC resolution types'], [8, '10.0.0.300 is not a valid IP']],
  },
  {
    name: 'several hosts on a TCP port',
    text: SE_HEAD + yaml`
      spec:
        hosts: [a.example.com, b.example.com]
        resolution: DNS
        ports:
        - {number: 5432, name: tcp-pg, protocol: TCP}
    `,
    errors: [[7, 'multiple hosts provided with non-HTTP, non-TLS ports']],
  },
  {
    name: 'unknown resolution and location',
    text: SE_HEAD + yaml`
      spec:
        hosts: [a.example.com]
        resolution: ROUND_ROBIN
        location: INTERNAL
        ports:
        - {number: 80, name: http, protocol: HTTP}
    `,
    errors: [
      [8, 'unknown value "ROUND_ROBIN" for spec.resolution, expected one of NONE, STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS'],
      [9, 'unknown value "INTERNAL" for spec.location, expected one of MESH_EXTERNAL, MESH_INTERNAL'],
    ],
  },
  {
    name: 'exportTo duplicates and invalid entries',
    text: SE_HEAD + yaml`
      spec:
        hosts: [a.example.com]
        ports:
        - {number: 80, name: http, protocol: HTTP}
        exportTo: ["shop", ".", "Not_A_Namespace"]
    `,
    errors: [
      [10, 'duplicate entries in exportTo: . and current namespace shop'],
      [10, 'only .,*, or a valid DNS 1123 label is allowed as exportTo entry'],
    ],
  },
  {
    name: 'workloadSelector without labels warns',
    text: SE_HEAD + yaml`
      spec:
        hosts: [a.example.com]
        resolution: STATIC
        ports:
        - {number: 80, name: http, protocol: HTTP}
        workloadSelector: {}
    `,
    errors: [],
    warnings: [[11, 'service entry: workload selector specified without labels, will be applied to all services in namespace']],
  },
  {
    name: 'DNS_ROUND_ROBIN with two endpoints',
    text: SE_HEAD + yaml`
      spec:
        hosts: [a.example.com]
        resolution: DNS_ROUND_ROBIN
        ports:
        - {number: 80, name: http, protocol: HTTP}
        endpoints:
        - address: a1.example.com
        - address: a2.example.com
    `,
    errors: [[11, 'there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN']],
  },
  // --- WorkloadEntry (validateWorkloadEntry) ---
  {
    name: 'workload entry without address',
    text: WE_HEAD + yaml`
      spec:
        labels:
          app: a
    `,
    errors: [[6, 'address is required']],
  },
  {
    name: 'workload entry port out of range, bad port name, bad service account, bad label',
    text: WE_HEAD + yaml`
      spec:
        address: 10.0.0.1
        serviceAccount: Payments_API
        labels:
          "bad key!": x
        ports:
          http: 70000
          Bad_Port: 80
    `,
    errors: [
      [8, 'serviceAccount "Payments_API" is invalid: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\', and must start and end with an alphanumeric character (e.g. \'example.com\'), at most 253 characters'],
      [9, 'invalid tag key: "bad key!"'],
      [12, 'port number 70000 must be in the range 1..65535'],
      [13, 'invalid port name: Bad_Port'],
    ],
  },
  {
    name: 'workload entry with a hostname address (EDS needs an IP)',
    text: WE_HEAD + yaml`
      spec:
        address: vm1.example.com
    `,
    errors: [[7, 'endpoint address "vm1.example.com" is not a valid IP address']],
  },
  {
    name: 'address unset with a network is a warning',
    text: WE_HEAD + yaml`
      spec:
        network: remote
    `,
    errors: [],
    warnings: [[6, 'address is unset with network "remote"']],
  },
  // --- envelope ---
  {
    name: 'YAML syntax error',
    text: PA_HEAD + yaml`
      spec:
        mtls: [STRICT
    `,
    errors: [[8, 'Flow sequence in block collection must be sufficiently indented and end with a ]']],
  },
  {
    name: 'unknown kind',
    text: yaml`
      apiVersion: security.istio.io/v1
      kind: PeerAuthorization
      metadata: {name: x}
    `,
    errors: [[2, 'no matches for kind "PeerAuthorization" in version "security.istio.io/v1" (meshd reads PeerAuthentication, AuthorizationPolicy, ServiceEntry, WorkloadEntry, DestinationRule, ClusterFederatedTrustDomain and MeshConfig)']],
  },
  {
    name: 'unserved apiVersion of a known kind',
    text: yaml`
      apiVersion: security.istio.io/v1alpha1
      kind: PeerAuthentication
      metadata: {name: x}
    `,
    errors: [[2, 'no matches for kind "PeerAuthentication" in version "security.istio.io/v1alpha1" (meshd reads PeerAuthentication as security.istio.io/v1, security.istio.io/v1beta1)']],
  },
  {
    name: 'missing apiVersion and kind',
    text: yaml`
      metadata:
        name: x
      spec: {}
    `,
    errors: [[1, 'apiVersion not set'], [1, 'kind not set']],
  },
  {
    name: 'missing name, bad namespace, bad creationTimestamp, unknown top-level field',
    text: yaml`
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata:
        namespace: Shop
        creationTimestamp: yesterday
      spec: {}
      spek: {}
    `,
    errors: [
      [3, 'resource name may not be empty'],
      [4, 'metadata.namespace: Invalid value: "Shop": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start and end with an alphanumeric character (e.g. \'my-name\',  or \'123-abc\'), at most 63 characters'],
      [5, 'metadata.creationTimestamp: Invalid value: "yesterday": must be an RFC 3339 time, e.g. "2024-05-01T12:00:00Z"'],
      [7, 'unknown field "spek" in the document'],
    ],
  },
  {
    name: 'unsupported Istio kind is a warning',
    text: yaml`
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata: {name: x, namespace: shop}
      spec: {hosts: [a]}
    `,
    errors: [],
    warnings: [[1, 'VirtualService is not supported by meshd and is ignored']],
  },
  {
    name: 'numeric label value must be quoted',
    text: WE_HEAD + yaml`
      spec:
        address: 10.0.0.1
        labels:
          version: 2
    `,
    errors: [[9, 'spec.labels.version must be a string, got number 2 (quote it)']],
  },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const s = snapshotOf({ 'cfg/x.yaml': row.text });
    const errors = s.messages.filter((m) => m.level === 'error').map((m) => [m.source.line, m.message]);
    const sortKey = (a: (string | number)[]): string => `${String(a[0]).padStart(4, '0')}${a[1]}`;
    t.same(errors.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1)), [...row.errors].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1)));
    for (const [line, message] of row.warnings ?? []) {
      t.ok(s.messages.some((m) => m.level === 'warning' && m.source.line === line && m.message === message), `warning at ${line}: ${message}\n${JSON.stringify(s.messages)}`);
    }
    for (const m of s.messages) t.equal(m.source.file, 'cfg/x.yaml');
    // A failing document never enters the snapshot.
    if (row.errors.length > 0) t.equal(s.peerAuthentications.length + s.serviceEntries.length + s.workloadEntries.length, 0);
  });
}

t.test('messages name the resource as istioctl does (Kind/namespace/name)', async (t) => {
  const s = snapshotOf({ 'a.yaml': PA_HEAD + 'spec:\n  mtls:\n    mode: NOPE\n' });
  t.equal(s.messages[0]?.resource, 'PeerAuthentication/shop/p');
});

t.test('a document without namespace lands in "default", as kubectl applies it', async (t) => {
  const s = snapshotOf({ 'a.yaml': 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: x\nspec: {}\n' });
  t.equal(s.peerAuthentications[0]?.meta.namespace, 'default');
});

t.test('duplicate names: the first definition (by file name, then order) wins, the second is an error', async (t) => {
  const doc = PA_HEAD + 'spec:\n  mtls:\n    mode: STRICT\n';
  const s = snapshotOf({ 'b.yaml': doc.replace('STRICT', 'DISABLE'), 'a.yaml': doc });
  t.equal(s.peerAuthentications.length, 1);
  t.equal(s.peerAuthentications[0]?.mode, 'STRICT');
  const err = s.messages.find((m) => m.level === 'error');
  t.equal(err?.source.file, 'b.yaml');
  t.equal(err?.message, 'PeerAuthentication/shop/p is already defined at a.yaml:1; this definition is ignored');
});

t.test('root-namespace selector policy and competing namespace policies are reported', async (t) => {
  const s = snapshotOf({
    'a.yaml': yaml`
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata: {name: sel, namespace: istio-system}
      spec:
        selector: {matchLabels: {app: web}}
        mtls: {mode: STRICT}
      ---
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata: {name: a, namespace: shop, creationTimestamp: "2024-01-01T00:00:00Z"}
      spec: {mtls: {mode: STRICT}}
      ---
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata: {name: b, namespace: shop}
      spec: {mtls: {mode: DISABLE}}
    `,
  });
  const warnings = s.messages.filter((m) => m.level === 'warning').map((m) => `${m.source.line} ${m.message}`);
  t.same(warnings, [
    '1 a PeerAuthentication with a workload selector in the root namespace "istio-system" is ignored; put it in the workload\'s namespace',
    '13 Namespace-level PeerAuthentication is already defined for "shop" by PeerAuthentication/shop/a; this one is ignored (the oldest wins)',
  ]);
});
