/** Every kind in every served API version maps to the model the generators read. */
import t from 'tap';
import { DEFAULT_MESH_SETTINGS } from '../../src/config/model.js';
import { snapshotOf, yaml } from './helpers.js';

const PA = (apiVersion: string): string => yaml`
  apiVersion: ${apiVersion}
  kind: PeerAuthentication
  metadata:
    name: web
    namespace: shop
    creationTimestamp: "2024-05-01T10:00:00Z"
    labels: {team: web}
    annotations: {note: hello}
    uid: 0b0e1f4c-1111-2222-3333-444455556666
    resourceVersion: "123"
  spec:
    selector:
      matchLabels:
        app: web
    mtls:
      mode: STRICT
    portLevelMtls:
      9090:
        mode: DISABLE
      "8443":
        mode: PERMISSIVE
      8080: {}
`;

for (const v of ['security.istio.io/v1', 'security.istio.io/v1beta1']) {
  t.test(`PeerAuthentication ${v}`, async (t) => {
    const s = snapshotOf({ 'pa.yaml': PA(v) });
    t.same(s.messages, []);
    const pa = s.peerAuthentications[0]!;
    t.equal(pa.kind, 'PeerAuthentication');
    t.same(pa.meta, {
      name: 'web', namespace: 'shop', creationTimestamp: '2024-05-01T10:00:00Z', labels: { team: 'web' }, annotations: { note: 'hello' },
      source: { file: 'pa.yaml', line: 1 },
    });
    t.same(pa.selector, { app: 'web' });
    t.equal(pa.mode, 'STRICT');
    t.same([...pa.portLevelMtls].sort((a, b) => a[0] - b[0]), [[8080, 'UNSET'], [8443, 'PERMISSIVE'], [9090, 'DISABLE']]);
  });
}

t.test('PeerAuthentication without spec is a namespace-wide UNSET policy', async (t) => {
  const s = snapshotOf({ 'pa.yaml': 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: shop}\n' });
  t.same(s.messages, []);
  t.equal(s.peerAuthentications[0]?.mode, 'UNSET');
  t.equal(s.peerAuthentications[0]?.selector, undefined);
  t.equal(s.peerAuthentications[0]?.portLevelMtls.size, 0);
});

const SE = (apiVersion: string): string => yaml`
  # a leading comment does not shift the document line
  apiVersion: ${apiVersion}
  kind: ServiceEntry
  metadata:
    name: api
    namespace: payments
  spec:
    hosts: [api.payments.svc.cluster.local]
    addresses: [240.240.0.10]
    location: MESH_INTERNAL
    resolution: STATIC
    ports:
    - number: 8080
      name: http
      protocol: http
    - number: 9000
      name: grpc
      protocol: GRPC
      targetPort: 19000
    - number: 5432
      name: tcp-db
    workloadSelector:
      labels:
        app: api
    exportTo: [".", "shop"]
    subjectAltNames: ["spiffe://cluster.local/ns/payments/sa/extra"]
`;

for (const v of ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']) {
  t.test(`ServiceEntry ${v}`, async (t) => {
    const s = snapshotOf({ 'se.yaml': SE(v) });
    t.same(s.messages.filter((m) => m.level === 'error'), []);
    const se = s.serviceEntries[0]!;
    t.equal(se.meta.source.line, 2);
    t.same(se.hosts, ['api.payments.svc.cluster.local']);
    t.same(se.addresses, ['240.240.0.10']);
    t.equal(se.location, 'MESH_INTERNAL');
    t.equal(se.resolution, 'STATIC');
    t.same(se.ports, [
      { number: 8080, protocol: 'HTTP', name: 'http', targetPort: 8080 },
      { number: 9000, protocol: 'GRPC', name: 'grpc', targetPort: 19000 },
      { number: 5432, protocol: 'UNKNOWN', name: 'tcp-db', targetPort: 5432 },
    ]);
    t.same(se.workloadSelector, { app: 'api' });
    t.same(se.endpoints, []);
    t.same(se.exportTo, ['.', 'shop']);
    t.same(se.subjectAltNames, ['spiffe://cluster.local/ns/payments/sa/extra']);
  });
}

t.test('ServiceEntry defaults follow the proto: MESH_EXTERNAL, resolution NONE', async (t) => {
  const s = snapshotOf({ 'se.yaml': 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext}\nspec:\n  hosts: [example.com]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n' });
  t.same(s.messages, []);
  t.equal(s.serviceEntries[0]?.location, 'MESH_EXTERNAL');
  t.equal(s.serviceEntries[0]?.resolution, 'NONE');
  t.equal(s.serviceEntries[0]?.meta.namespace, 'default');
});

t.test('ServiceEntry inline STATIC endpoints and DNS hostnames', async (t) => {
  const s = snapshotOf({
    'se.yaml': yaml`
      apiVersion: networking.istio.io/v1
      kind: ServiceEntry
      metadata: {name: db, namespace: shop}
      spec:
        hosts: [db.shop.internal]
        location: MESH_INTERNAL
        resolution: STATIC
        ports: [{number: 5432, name: tcp, protocol: TCP}]
        endpoints:
        - address: 10.1.0.5
          ports: {tcp: 15432}
          labels: {app: db}
          serviceAccount: db
          locality: us-east1/b
          weight: 3
          network: n1
      ---
      apiVersion: networking.istio.io/v1
      kind: ServiceEntry
      metadata: {name: ext, namespace: shop}
      spec:
        hosts: [api.example.com]
        resolution: DNS
        ports: [{number: 443, name: https, protocol: HTTPS}]
        endpoints:
        - address: eu.api.example.com
    `,
  });
  t.same(s.messages, []);
  const db = s.serviceEntries.find((x) => x.meta.name === 'db')!;
  t.same(db.endpoints, [{ address: '10.1.0.5', ports: { tcp: 15432 }, labels: { app: 'db' }, serviceAccount: 'db', locality: 'us-east1/b', weight: 3, network: 'n1' }]);
  const ext = s.serviceEntries.find((x) => x.meta.name === 'ext')!;
  t.equal(ext.resolution, 'DNS');
  t.equal(ext.endpoints[0]?.address, 'eu.api.example.com');
});

for (const v of ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']) {
  t.test(`WorkloadEntry ${v}`, async (t) => {
    const s = snapshotOf({
      'we.yaml': yaml`
        apiVersion: ${v}
        kind: WorkloadEntry
        metadata: {name: api-1, namespace: payments}
        spec:
          address: 127.0.0.11
          serviceAccount: payments-api
          labels: {app: api, version: v1}
          ports: {http: 8080, grpc: "9000"}
          locality: eu/west
          weight: 2
      `,
    });
    t.same(s.messages, []);
    t.same(s.workloadEntries[0]?.spec, {
      address: '127.0.0.11', ports: { http: 8080, grpc: 9000 }, labels: { app: 'api', version: 'v1' },
      serviceAccount: 'payments-api', locality: 'eu/west', weight: 2,
    });
  });
}

t.test('WorkloadEntry without serviceAccount keeps it empty (Istio: no sidecar unless labelled)', async (t) => {
  const s = snapshotOf({ 'we.yaml': 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm}\nspec: {address: "10.0.0.9"}\n' });
  t.equal(s.workloadEntries[0]?.spec.serviceAccount, '');
});

t.test('snapshot lists are sorted by namespace then name and are frozen', async (t) => {
  const we = (ns: string, name: string): string => `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {address: 10.0.0.1}\n`;
  const s = snapshotOf({ 'z.yaml': we('b', 'x'), 'a.yaml': `${we('b', 'a')}---\n${we('a', 'z')}` });
  t.same(s.workloadEntries.map((w) => `${w.meta.namespace}/${w.meta.name}`), ['a/z', 'b/a', 'b/x']);
  t.ok(Object.isFrozen(s) && Object.isFrozen(s.workloadEntries));
});

t.test('mesh config: plain Istio MeshConfig in mesh.yaml', async (t) => {
  const s = snapshotOf({
    'dir/mesh.yaml': yaml`
      trustDomain: example.org
      trustDomainAliases: [old.example.org]
      rootNamespace: mesh-root
      enableAutoMtls: false
      meshMTLS: {minProtocolVersion: TLSV1_3}
      enableEnvoyAccessLogService: true
      defaultConfig:
        envoyAccessLogService: {address: "127.0.0.1:15017"}
        proxyMetadata:
          SECRET_TTL: 12h
          SECRET_GRACE_PERIOD_RATIO: 0.25
    `,
  });
  t.same(s.messages, []);
  t.same(s.mesh, {
    trustDomain: 'example.org', trustDomainAliases: ['old.example.org'], rootNamespace: 'mesh-root', enableAutoMtls: false,
    certificateTtlMs: 12 * 3_600_000, certificateRotationFraction: 0.75, minTlsVersion: 'TLSV1_3',
    accessLogService: { address: '127.0.0.1:15017' },
  });
});

t.test('mesh config: absent means Istio defaults (cluster.local, istio-system, auto mTLS, 24h, renew at 80%)', async (t) => {
  const s = snapshotOf({});
  t.same(s.mesh, DEFAULT_MESH_SETTINGS);
  t.equal(s.mesh.certificateRotationFraction, 0.8, "meshd's default: renew after 80% of the lifetime");
  t.equal(s.mesh.rootNamespace, 'istio-system');
});

t.test('mesh config: the istio ConfigMap form (data.mesh), with lines inside the block', async (t) => {
  const s = snapshotOf({
    'istio-cm.yaml': yaml`
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: istio, namespace: istio-system}
      data:
        mesh: |-
          trustDomain: corp.example
          rootNamespace: Bad_Root
    `,
  });
  t.same(s.messages.map((m) => [m.level, m.source.line, m.message]), [
    ['error', 7, 'rootNamespace: Invalid value: "Bad_Root": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start and end with an alphanumeric character (e.g. \'my-name\',  or \'123-abc\'), at most 63 characters'],
  ]);
  const ok = snapshotOf({ 'istio-cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: |-\n    trustDomain: corp.example\n' });
  t.equal(ok.mesh.trustDomain, 'corp.example');
});

t.test('mesh config: Istio-only keys are one warning, unknown keys and bad values are errors', async (t) => {
  const s = snapshotOf({
    'mesh.yaml': yaml`
      trustDomain: cluster.local
      accessLogFile: /dev/stdout
      outboundTrafficPolicy: {mode: REGISTRY_ONLY}
      trustDomian: typo.local
      defaultConfig:
        discoveryAddress: istiod.istio-system.svc:15012
        proxyMetadata:
          SECRET_TTL: forever
          SECRET_GRACE_PERIOD_RATIO: "1.5"
    `,
  });
  t.same(s.messages.map((m) => [m.level, m.source.line, m.message]), [
    ['warning', 2, 'MeshConfig fields not used by meshd (ignored): accessLogFile, outboundTrafficPolicy, defaultConfig.discoveryAddress'],
    ['error', 4, 'unknown field "trustDomian" in MeshConfig'],
    ['error', 8, 'SECRET_TTL: invalid duration "forever" at "forever" (expected e.g. "24h", "1h30m", "500ms")'],
    ['error', 9, 'SECRET_GRACE_PERIOD_RATIO must be a number between 0 and 1 (exclusive), got "1.5"'],
  ]);
  t.same(s.mesh, DEFAULT_MESH_SETTINGS, 'a failing mesh config on first load leaves the defaults');
});

t.test('a mesh.yaml may also hold resources (documents with a kind)', async (t) => {
  const s = snapshotOf({ 'mesh.yaml': 'trustDomain: a.local\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n' });
  t.same(s.messages, []);
  t.equal(s.mesh.trustDomain, 'a.local');
  t.equal(s.peerAuthentications[0]?.meta.source.line, 3);
});

t.test('a v1 List as kubectl prints it: every item is read, lines point into the list', async (t) => {
  const s = snapshotOf({
    'list.yaml': yaml`
      apiVersion: v1
      kind: List
      items:
      - apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: default, namespace: shop}
        spec: {mtls: {mode: STRICT}}
      - apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: bad, namespace: shop}
        spec:
          mtls: {mode: STRONG}
      metadata: {resourceVersion: ""}
    `,
  });
  t.same(s.peerAuthentications.map((p) => [p.meta.name, p.meta.source.line]), [['default', 4]]);
  t.same(s.messages.map((m) => [m.level, m.source.line, m.resource]), [['error', 12, 'PeerAuthentication/shop/bad']]);
});
