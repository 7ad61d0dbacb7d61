import t from 'tap';
import { buildProxyConfig, type ProxyConfig } from '../../../src/xds/generators/proxy-config.js';
import type { Cluster, ClusterLoadAssignment, LbEndpoint } from '../../../src/envoy/messages.js';
import { docs, pa, se, snapshotOf, we, workload } from './fixtures.js';

/**
 * Outbound side: clusters with Istio's auto mTLS, EDS endpoints with per-endpoint tlsMode,
 * listeners on loopback per the deployment model, and RDS routes.
 */

const CLIENT = we('client', 'client-1', { address: '10.0.0.2', labels: { app: 'client' }, serviceAccount: 'client' });

function clientConfig(...objects: string[]): ProxyConfig {
  const snap = snapshotOf(docs(CLIENT, ...objects));
  return buildProxyConfig(snap, workload(snap, 'client', 'client-1'));
}

function cluster(c: ProxyConfig, name: string): Cluster {
  const found = c.clusters.find((x) => x.name === name);
  if (found === undefined) throw new Error(`no cluster ${name}; have ${c.clusters.map((x) => x.name).join(', ')}`);
  return found;
}

function endpoints(c: ProxyConfig, name: string): LbEndpoint[] {
  const cla = c.endpoints.find((x) => x.cluster_name === name) as ClusterLoadAssignment;
  return cla.endpoints!.flatMap((l) => l.lb_endpoints!);
}

function tlsModeOf(e: LbEndpoint): string | undefined {
  return e.metadata?.filter_metadata?.['envoy.transport_socket_match']?.fields?.tlsMode?.stringValue;
}

const SVC = (protocol = 'HTTP', extra: Partial<Parameters<typeof se>[2]> = {}) =>
  se('srv', 'api', { ports: [{ number: 8080, name: 'http', protocol }], selector: { app: 'api' }, ...extra });
const SRV1 = we('srv', 'api-1', { address: '10.0.1.1', labels: { app: 'api' }, serviceAccount: 'api', locality: 'eu/zone-a', weight: 3 });
const SRV2 = we('srv', 'api-2', { address: '10.0.1.2', labels: { app: 'api', 'security.istio.io/tlsMode': 'disabled' }, serviceAccount: 'api-legacy' });
const SRV3 = we('srv', 'api-3', { address: '10.0.1.3', labels: { app: 'api', special: 'yes' }, serviceAccount: 'api' });
const NAME = 'outbound|8080||api.srv.svc.cluster.local';

t.test('auto mTLS cluster: transport_socket_matches tlsMode-istio → UpstreamTlsContext, tlsMode-disabled → raw_buffer', async (t) => {
  const c = cluster(clientConfig(SVC(), SRV1, SRV2), NAME);
  t.equal(c.type, 'EDS');
  t.same(c.eds_cluster_config, { service_name: NAME, eds_config: { ads: {}, resource_api_version: 'V3' } });
  t.equal(c.transport_socket, undefined);
  const [istio, disabled] = c.transport_socket_matches!;
  t.equal(istio!.name, 'tlsMode-istio');
  t.same(istio!.match, { fields: { tlsMode: { stringValue: 'istio' } } });
  const ctx = istio!.transport_socket!.typed_config as Record<string, any>;
  t.equal(ctx['@type'], 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
  t.equal(ctx.sni, 'outbound_.8080_._.api.srv.svc.cluster.local');
  t.same(ctx.common_tls_context.alpn_protocols, ['istio']);
  t.same(ctx.common_tls_context.tls_certificate_sds_secret_configs.map((s: { name: string }) => s.name), ['default']);
  t.equal(ctx.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name, 'ROOTCA');
  t.same(
    ctx.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names,
    [{ san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/srv/sa/api' } }],
    'exact SPIFFE IDs of the service accounts with a sidecar',
  );
  t.same(disabled, { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } } });
});

t.test('HTTP/2 and gRPC services offer ALPN [istio, h2] and use HTTP/2 upstream', async (t) => {
  for (const protocol of ['GRPC', 'HTTP2']) {
    const c = cluster(clientConfig(SVC(protocol), SRV1), NAME);
    t.same((c.transport_socket_matches![0]!.transport_socket!.typed_config as any).common_tls_context.alpn_protocols, ['istio', 'h2']);
    t.ok(c.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'], `${protocol}: explicit HTTP/2`);
  }
  t.equal(cluster(clientConfig(SVC('TCP'), SRV1), NAME).typed_extension_protocol_options, undefined);
});

t.test('trust-domain aliases expand the exact server SANs', async (t) => {
  const snap = snapshotOf(docs(CLIENT, SVC(), SRV1), 'trustDomain: new.org\ntrustDomainAliases: [old.org]\n');
  const c = cluster(buildProxyConfig(snap, workload(snap, 'client', 'client-1')), NAME);
  const ids = (c.transport_socket_matches![0]!.transport_socket!.typed_config as any).common_tls_context
    .combined_validation_context.default_validation_context.match_typed_subject_alt_names.map((m: any) => m.matcher.exact);
  t.same(ids, ['spiffe://new.org/ns/srv/sa/api', 'spiffe://old.org/ns/srv/sa/api']);
});

const endpointRows: Array<{ name: string; objects: string[]; expect: Record<string, string | undefined> }> = [
  { name: 'sidecar endpoints get tlsMode istio, a tlsMode=disabled endpoint none', objects: [SRV1, SRV2, SRV3], expect: { '10.0.1.1': 'istio', '10.0.1.2': undefined, '10.0.1.3': 'istio' } },
  { name: 'namespace STRICT: still per endpoint', objects: [pa('srv', 'default', 'STRICT'), SRV1, SRV2], expect: { '10.0.1.1': 'istio', '10.0.1.2': undefined } },
  { name: 'a workload-level DISABLE removes tlsMode from that endpoint only', objects: [pa('srv', 'special', 'DISABLE', { selector: { special: 'yes' } }), SRV1, SRV3], expect: { '10.0.1.1': 'istio', '10.0.1.3': undefined } },
  { name: 'a port-level DISABLE on the endpoint port removes tlsMode', objects: [pa('srv', 'special', 'UNSET', { selector: { special: 'yes' }, ports: { 8080: 'DISABLE' } }), SRV1, SRV3], expect: { '10.0.1.1': 'istio', '10.0.1.3': undefined } },
  { name: 'a port-level DISABLE on another port changes nothing', objects: [pa('srv', 'special', 'UNSET', { selector: { special: 'yes' }, ports: { 9999: 'DISABLE' } }), SRV3], expect: { '10.0.1.3': 'istio' } },
  { name: 'a port-level STRICT under a DISABLE workload restores tlsMode', objects: [pa('srv', 'special', 'DISABLE', { selector: { special: 'yes' }, ports: { 8080: 'STRICT' } }), SRV3], expect: { '10.0.1.3': 'istio' } },
  { name: 'meshd.io/sidecar="false" overrides a service account', objects: [we('srv', 'api-9', { address: '10.0.1.9', labels: { app: 'api' }, serviceAccount: 'api', annotations: { 'meshd.io/sidecar': 'false' } })], expect: { '10.0.1.9': undefined } },
  { name: 'meshd.io/sidecar="true" marks an entry without service account', objects: [we('srv', 'api-9', { address: '10.0.1.9', labels: { app: 'api' }, annotations: { 'meshd.io/sidecar': 'true' } })], expect: { '10.0.1.9': 'istio' } },
  { name: 'no label and no service account: no sidecar (Istio getTLSModeFromWorkloadEntry)', objects: [we('srv', 'api-9', { address: '10.0.1.9', labels: { app: 'api' } })], expect: { '10.0.1.9': undefined } },
];

for (const row of endpointRows) {
  t.test(`endpoints: ${row.name}`, async (t) => {
    const c = clientConfig(SVC(), ...row.objects);
    const got = Object.fromEntries(endpoints(c, NAME).map((e) => [e.endpoint!.address!.socket_address!.address, tlsModeOf(e)]));
    t.same(got, row.expect);
  });
}

t.test('endpoints carry locality and weights; localities weigh the sum of their endpoints', async (t) => {
  const c = clientConfig(SVC(), SRV1, SRV3);
  const cla = c.endpoints.find((x) => x.cluster_name === NAME)!;
  t.same(cla.endpoints!.map((l) => [l.locality ?? null, l.load_balancing_weight!.value, l.lb_endpoints!.map((e) => e.load_balancing_weight!.value)]), [
    [null, 1, [1]],
    [{ region: 'eu', zone: 'zone-a' }, 3, [3]],
  ]);
});

t.test('cluster without auto mTLS', async (t) => {
  const rows = [
    { name: 'service namespace DISABLE (Istio infers the service mode from namespace/mesh)', objects: [pa('srv', 'default', 'DISABLE'), SVC(), SRV1] },
    { name: 'MESH_EXTERNAL', objects: [SVC('HTTP', { location: 'MESH_EXTERNAL' }), SRV1] },
  ];
  for (const row of rows) {
    const c = cluster(clientConfig(...row.objects), NAME);
    t.equal(c.transport_socket_matches, undefined, row.name);
  }
  const snap = snapshotOf(docs(CLIENT, SVC(), SRV1), 'enableAutoMtls: false\n');
  t.equal(cluster(buildProxyConfig(snap, workload(snap, 'client', 'client-1')), NAME).transport_socket_matches, undefined, 'enableAutoMtls false');
  const strictWorkload = cluster(clientConfig(pa('srv', 'w', 'STRICT', { selector: { app: 'api' } }), SVC(), SRV1), NAME);
  t.ok(strictWorkload.transport_socket_matches, 'a workload-level policy does not change the inferred service mode');
});

t.test('DNS resolution: STRICT_DNS with the host inline; NONE is skipped with a warning', async (t) => {
  const c = clientConfig(se('ext', 'web', { hosts: ['api.example.com'], location: 'MESH_EXTERNAL', resolution: 'DNS', ports: [{ number: 443, name: 'tls', protocol: 'TLS' }] }));
  const dns = cluster(c, 'outbound|443||api.example.com');
  t.equal(dns.type, 'STRICT_DNS');
  t.same(dns.load_assignment!.endpoints![0]!.lb_endpoints![0]!.endpoint!.address!.socket_address, { address: 'api.example.com', port_value: 443 });
  t.equal(c.endpoints.some((e) => e.cluster_name === 'outbound|443||api.example.com'), false, 'no EDS for DNS clusters');

  const none = clientConfig(se('ext', 'any', { hosts: ['*.example.org'], location: 'MESH_EXTERNAL', resolution: 'NONE', ports: [{ number: 443, name: 'tls', protocol: 'TLS' }] }));
  t.equal(none.clusters.some((x) => x.name!.includes('example.org')), false);
  t.match(none.warnings.join('\n'), /resolution NONE needs transparent interception/);
});

t.test('inline ServiceEntry endpoints are served like WorkloadEntries', async (t) => {
  const c = clientConfig(se('srv', 'api', { ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], endpoints: [{ address: '10.0.2.1', serviceAccount: 'api' }, { address: '10.0.2.2' }] }));
  t.same(endpoints(c, NAME).map((e) => [e.endpoint!.address!.socket_address!.address, tlsModeOf(e)]), [['10.0.2.1', 'istio'], ['10.0.2.2', undefined]]);
});

t.test('exportTo limits which namespaces see a service', async (t) => {
  t.equal(clientConfig(SVC('HTTP', { exportTo: ['.'] }), SRV1).clusters.some((x) => x.name === NAME), false, '"." hides it from other namespaces');
  t.equal(clientConfig(SVC('HTTP', { exportTo: ['client'] }), SRV1).clusters.some((x) => x.name === NAME), true, 'listed namespace sees it');
  t.equal(clientConfig(SVC('HTTP', { exportTo: ['~'] }), SRV1).clusters.some((x) => x.name === NAME), false, '"~" hides it from all');
});

t.test('outbound listeners: 127.0.0.1:<port> shared by HTTP services, RDS named by port, virtual hosts by Host', async (t) => {
  const c = clientConfig(
    SVC(), SRV1,
    se('other', 'books', { ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], selector: { app: 'books' } }),
  );
  const out = c.listeners.filter((l) => l.traffic_direction === 'OUTBOUND');
  t.same(out.map((l) => l.name), ['127.0.0.1_8080']);
  const hcm = out[0]!.filter_chains![0]!.filters![0]!.typed_config as Record<string, any>;
  t.same(hcm.rds, { route_config_name: '8080', config_source: { ads: {}, resource_api_version: 'V3' } });
  t.equal(hcm.access_log.length, 1);
  const route = c.routes.find((r) => r.name === '8080')!;
  t.same(route.virtual_hosts!.map((v) => v.name), ['api.srv.svc.cluster.local:8080', 'books.other.svc.cluster.local:8080']);
  t.same(route.virtual_hosts![0]!.domains, [
    'api.srv.svc.cluster.local', 'api.srv.svc.cluster.local:8080', 'api.srv.svc', 'api.srv.svc:8080', 'api.srv', 'api.srv:8080',
  ], 'no bare short name from another namespace');
  t.equal(route.virtual_hosts![0]!.routes![0]!.route!.cluster, NAME);
});

t.test('a loopback VIP in spec.addresses gets its own listener and a catch-all virtual host', async (t) => {
  const c = clientConfig(SVC('HTTP', { addresses: ['127.0.0.50/32'] }), SRV1, se('srv', 'db', { addresses: ['127.0.0.51'], ports: [{ number: 5432, name: 'pg', protocol: 'TCP' }], selector: { app: 'db' } }));
  const out = c.listeners.filter((l) => l.traffic_direction === 'OUTBOUND');
  t.same(out.map((l) => [l.name, l.address!.socket_address!.address, l.address!.socket_address!.port_value]), [['127.0.0.50_8080', '127.0.0.50', 8080], ['127.0.0.51_5432', '127.0.0.51', 5432]]);
  const route = c.routes.find((r) => r.name === '127.0.0.50:8080')!;
  t.same(route.virtual_hosts![0]!.domains, ['*']);
  const tcp = out[1]!.filter_chains![0]!.filters![0]!;
  t.equal(tcp.name, 'envoy.filters.network.tcp_proxy');
  t.equal((tcp.typed_config as any).cluster, 'outbound|5432||db.srv.svc.cluster.local');
});

t.test('collisions: a TCP port taken by an older service, and the app\'s own port', async (t) => {
  const snap = snapshotOf(docs(
    we('client', 'client-1', { address: '10.0.0.2', labels: { app: 'client' }, serviceAccount: 'client' }),
    se('client', 'self', { ports: [{ number: 9000, name: 'http', protocol: 'HTTP' }], selector: { app: 'client' } }),
    se('a', 'first', { created: '2024-01-01T00:00:00Z', ports: [{ number: 6379, name: 'tcp', protocol: 'TCP' }], selector: { app: 'x' } }),
    se('b', 'second', { created: '2025-01-01T00:00:00Z', ports: [{ number: 6379, name: 'tcp', protocol: 'TCP' }], selector: { app: 'x' } }),
    se('c', 'same-port', { ports: [{ number: 9000, name: 'http', protocol: 'HTTP' }], selector: { app: 'x' } }),
  ));
  const c = buildProxyConfig(snap, workload(snap, 'client', 'client-1'));
  const out = c.listeners.filter((l) => l.traffic_direction === 'OUTBOUND');
  t.same(out.map((l) => l.name), ['127.0.0.1_6379']);
  t.equal((out[0]!.filter_chains![0]!.filters![0]!.typed_config as any).cluster, 'outbound|6379||first.a.svc.cluster.local', 'the oldest ServiceEntry keeps the port');
  const w = c.warnings.join('\n');
  t.match(w, /outbound 127\.0\.0\.1:6379 is taken by first\.a\.svc\.cluster\.local:6379 .*second\.b\.svc\.cluster\.local:6379 .* gets no listener/);
  t.match(w, /outbound 127\.0\.0\.1:9000 .* is not opened: the workload's own port 9000 is served there/);
  t.ok(c.clusters.some((x) => x.name === 'outbound|6379||second.b.svc.cluster.local'), 'clusters exist regardless of listeners');
});

t.test('server SANs: an inline endpoint names its identity with serviceAccount; without one it adds none (as Istio), a WorkloadEntry without one runs as default', async (t) => {
  const inline = (name: string, endpoint: string): string => [
    'apiVersion: networking.istio.io/v1', 'kind: ServiceEntry', `metadata: {name: ${name}, namespace: srv}`, 'spec:',
    `  hosts: ["${name}.example.com"]`, '  location: MESH_INTERNAL', '  resolution: STATIC',
    '  ports:', '  - {number: 8080, name: http, protocol: HTTP}', '  endpoints:', `  - ${endpoint}`,
  ].join('\n');
  const sans = (c: ProxyConfig, name: string): unknown => {
    const ctx = cluster(c, name).transport_socket_matches![0]!.transport_socket!.typed_config as Record<string, any>;
    return ctx.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names.map((m: { matcher: { exact: string } }) => m.matcher.exact);
  };
  const c = clientConfig(
    inline('named', '{address: 10.0.2.1, serviceAccount: vm, labels: {security.istio.io/tlsMode: istio}}'),
    inline('unnamed', '{address: 10.0.2.2, labels: {security.istio.io/tlsMode: istio}}'),
    SVC(), we('srv', 'api-9', { address: '10.0.1.9', labels: { app: 'api', 'security.istio.io/tlsMode': 'istio' } }),
  );
  t.same(sans(c, 'outbound|8080||named.example.com'), ['spiffe://cluster.local/ns/srv/sa/vm'], 'the named service account');
  t.same(sans(c, 'outbound|8080||unnamed.example.com'), [], 'no identity of this mesh is assumed for an address it does not run');
  t.same(sans(c, NAME), ['spiffe://cluster.local/ns/srv/sa/default'], 'a WorkloadEntry without a serviceAccount gets its SVID as default, so default is its identity');
});
