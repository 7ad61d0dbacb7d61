/**
 * DestinationRule documents → Istio's validation messages at the offending line
 * (ValidateDestinationRule, validateTrafficPolicy, agent.ValidateTLS, validateExportTo), and
 * valid ones → the model meshd applies (tls, port-level tls, exportTo, workloadSelector).
 */
import t from 'tap';
import { snapshotOf, yaml } from './helpers.js';

const HEAD = yaml`
  apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata:
    name: dr
    namespace: shop
`; // 5 lines, spec starts on line 6

interface Row {
  name: string;
  text: string;
  errors: [line: number, message: string][];
  warnings?: [line: number, message: string][];
}

const IGNORED = 'valid Istio that meshd does not apply (meshd applies trafficPolicy.tls and portLevelSettings[].tls)';

const rows: Row[] = [
  {
    name: 'host: required, wildcard only in the first label',
    text: HEAD + 'spec: {}\n---\n' + HEAD.replace('name: dr', 'name: b') + 'spec:\n  host: "api.*.example.com"\n',
    errors: [[6, 'empty domain name not allowed'], [14, 'domain name "*.example.com" invalid (label "*" invalid)']],
  },
  {
    name: 'empty traffic policy; tunnel with proxyProtocol',
    text: HEAD + yaml`
      spec:
        host: a
        trafficPolicy: {}
        subsets:
        - name: v1
          trafficPolicy:
            tunnel: {targetHost: x, targetPort: 1}
            proxyProtocol: {}
    `,
    errors: [[8, 'traffic policy must have at least one field'], [11, 'tunnel and proxyProtocol must not be set together']],
  },
  {
    name: 'port-level settings: null, no port, no fields',
    text: HEAD + yaml`
      spec:
        host: a
        trafficPolicy:
          portLevelSettings:
          - null
          - tls: {mode: SIMPLE}
          - port: {number: 80}
    `,
    errors: [
      [10, 'traffic policy may not be null'],
      [11, 'portTrafficPolicy must have valid port'],
      [12, 'port traffic policy must have at least one field'],
    ],
  },
  {
    name: 'MUTUAL needs a client certificate and key; credentialName excludes files',
    text: HEAD + yaml`
      spec:
        host: a
        trafficPolicy:
          tls: {mode: MUTUAL}
          portLevelSettings:
          - port: {number: 443}
            tls:
              mode: SIMPLE
              credentialName: api-cert
              caCertificates: /etc/certs/ca.pem
    `,
    errors: [
      [9, 'client certificate required for mutual tls'],
      [9, 'private key required for mutual tls'],
      [12, 'cannot specify client certificates or CA certificate or CA CRL If credentialName is set'],
    ],
    warnings: [[14, 'credentialName names a Kubernetes Secret, which meshd cannot read; give clientCertificate, privateKey and caCertificates as files on the sidecar\'s host']],
  },
  {
    name: 'insecureSkipVerify excludes CA and SANs',
    text: HEAD + yaml`
      spec:
        host: a
        trafficPolicy:
          tls:
            mode: SIMPLE
            insecureSkipVerify: true
            subjectAltNames: []
          portLevelSettings:
          - port: {number: 443}
            tls:
              mode: MUTUAL
              clientCertificate: /c.pem
              privateKey: /k.pem
              caCertificates: /ca.pem
              insecureSkipVerify: {value: true}
    `,
    errors: [
      [9, 'cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true'],
      [15, 'cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true'],
    ],
  },
  {
    name: 'exportTo: duplicates, ~, bad names; with a workloadSelector only its own namespace',
    text: HEAD + yaml`
      spec:
        host: a
        exportTo: ["shop", ".", "~", "Bad_NS"]
      ---
    ` + HEAD.replace('name: dr', 'name: sel') + yaml`
      spec:
        host: a
        workloadSelector:
          matchLabels: {app: web}
        exportTo: ["*"]
    `,
    errors: [
      [8, 'duplicate entries in exportTo: . and current namespace shop'],
      [8, 'exportTo ~ (none) is not allowed for Istio configuration objects'],
      [8, 'only .,*, or a valid DNS 1123 label is allowed as exportTo entry'],
      [19, 'destination rule with workload selector cannot have exportTo beyond current namespace'],
    ],
  },
  {
    name: 'subsets: names, duplicates, labels',
    text: HEAD + yaml`
      spec:
        host: a
        subsets:
        - name: v1
        - name: v1
        - name: V_2
          labels: {"bad key!": x}
        - null
    `,
    errors: [
      [10, 'duplicate subset names: v1'],
      [11, 'subset name is invalid: V_2'],
      [12, 'invalid tag key: "bad key!"'],
      [13, 'subset may not be null'],
    ],
  },
  {
    name: 'unknown fields, also inside parts meshd ignores',
    text: HEAD + yaml`
      spec:
        host: a
        trafficPolicy:
          tls: {mode: SIMPLE, sni: x, verify: true}
          outlierDetection: {consecutive5xxErrors: 3, interval: 5s, maxEjections: 1}
    `,
    errors: [
      [9, 'unknown field "verify" in spec.trafficPolicy.tls'],
      [10, 'unknown field "maxEjections" in spec.trafficPolicy.outlierDetection'],
    ],
  },
  {
    name: 'the dry-run annotation belongs to AuthorizationPolicy only',
    text: HEAD.replace('namespace: shop', 'namespace: shop\n  annotations: {"istio.io/dry-run": "true"}') + 'spec:\n  host: a\n',
    errors: [[6, 'shop/dr has unsupported annotation istio.io/dry-run, please remove the annotation']],
  },
  {
    name: 'parts meshd does not apply are one warning; tls with ISTIO_MUTUAL ignores files',
    text: HEAD + yaml`
      spec:
        host: reviews
        trafficPolicy:
          connectionPool:
            tcp: {maxConnections: 10}
          loadBalancer: {simple: ROUND_ROBIN}
          tls:
            mode: ISTIO_MUTUAL
            clientCertificate: /c.pem
        subsets:
        - name: v1
          labels: {version: v1}
    `,
    errors: [],
    warnings: [
      [9, `spec.trafficPolicy.connectionPool, spec.trafficPolicy.loadBalancer, spec.subsets: ${IGNORED}`],
      [12, 'clientCertificate has no effect with mode ISTIO_MUTUAL: the workload\'s own certificate and the mesh roots are used'],
    ],
  },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const s = snapshotOf({ 'cfg/dr.yaml': row.text });
    const key = (a: readonly (string | number)[]): string => `${String(a[0]).padStart(4, '0')}${a[1]}`;
    const sorted = (list: (string | number)[][]): (string | number)[][] => [...list].sort((a, b) => (key(a) < key(b) ? -1 : 1));
    const errors = s.messages.filter((m) => m.level === 'error').map((m) => [m.source.line, m.message]);
    t.same(sorted(errors), sorted(row.errors));
    for (const [line, message] of row.warnings ?? []) {
      t.ok(s.messages.some((m) => m.level === 'warning' && m.source.line === line && m.message === message), `warning at ${line}: ${message}\n${JSON.stringify(s.messages.map((m) => [m.source.line, m.message]))}`);
    }
    if (row.errors.length > 0) t.equal(s.destinationRules.length, 0, 'an invalid rule never enters the snapshot');
  });
}

t.test('every TLS mode and field reads into the model; port-level entries keep their port', async (t) => {
  const s = snapshotOf({ 'dr.yaml': HEAD + yaml`
    spec:
      host: api.example.com
      exportTo: ["."]
      trafficPolicy:
        tls:
          mode: MUTUAL
          clientCertificate: /etc/certs/client.pem
          privateKey: /etc/certs/client-key.pem
          caCertificates: /etc/certs/ca.pem
          sni: api.example.com
          subjectAltNames: [api.example.com, "*.example.com"]
        portLevelSettings:
        - port: {number: 80}
          tls: {mode: DISABLE}
        - port: {number: 8443}
          connectionPool: {tcp: {maxConnections: 1}}
  ` });
  t.same(s.messages.filter((m) => m.level === 'error'), []);
  const dr = s.destinationRules[0]!;
  t.equal(dr.host, 'api.example.com');
  t.same(dr.exportTo, ['.']);
  t.same(dr.trafficPolicy?.tls, {
    mode: 'MUTUAL',
    clientCertificate: '/etc/certs/client.pem',
    privateKey: '/etc/certs/client-key.pem',
    caCertificates: '/etc/certs/ca.pem',
    sni: 'api.example.com',
    subjectAltNames: ['api.example.com', '*.example.com'],
  });
  t.same(dr.trafficPolicy?.portLevelSettings, [{ port: 80, tls: { mode: 'DISABLE', subjectAltNames: [] } }, { port: 8443 }],
    'a port entry without tls is kept: it replaces the destination-level tls for its port');
});

t.test('served in v1, v1beta1 and v1alpha3; the last good version stays on error', async (t) => {
  const doc = (v: string, name: string, mode: string): string => HEAD.replace('networking.istio.io/v1', `networking.istio.io/${v}`).replace('name: dr', `name: ${name}`) + `spec:\n  host: a\n  trafficPolicy:\n    tls: {mode: ${mode}}\n`;
  const v1 = snapshotOf({ 'dr.yaml': [doc('v1', 'a', 'SIMPLE'), doc('v1beta1', 'b', 'DISABLE'), doc('v1alpha3', 'c', 'ISTIO_MUTUAL')].join('---\n') });
  t.same(v1.destinationRules.map((d) => d.trafficPolicy?.tls?.mode), ['SIMPLE', 'DISABLE', 'ISTIO_MUTUAL']);
  const v2 = snapshotOf({ 'dr.yaml': [doc('v1', 'a', 'STRICT'), doc('v1beta1', 'b', 'DISABLE'), doc('v1alpha3', 'c', 'ISTIO_MUTUAL')].join('---\n') }, v1);
  t.equal(v2.destinationRules[0], v1.destinationRules[0], 'the failing rule keeps its last good version');
  t.ok(v2.messages.some((m) => m.level === 'error' && m.message === 'unknown value "STRICT" for spec.trafficPolicy.tls.mode, expected one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL'));
});

t.test('an applied rule loads without a warning; one with a workloadSelector says it is not applied yet', async (t) => {
  const s = snapshotOf({ 'dr.yaml': HEAD + 'spec:\n  host: a\n' });
  t.same(s.messages, [], 'no "not applied" warning');
  const sel = snapshotOf({ 'dr.yaml': HEAD + 'spec:\n  host: a\n  workloadSelector:\n    matchLabels: {app: x}\n' });
  t.same(sel.messages.map((m) => [m.level, m.source.line, m.message]), [
    ['warning', 1, "a DestinationRule with workloadSelector is not applied yet: sidecars share their namespace's outbound clusters; without the selector it applies to every client in the namespace"],
  ]);
});
