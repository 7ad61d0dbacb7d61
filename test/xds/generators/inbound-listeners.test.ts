import t from 'tap';
import { buildProxyConfig } from '../../../src/xds/generators/proxy-config.js';
import type { Cluster, FilterChain, Listener } from '../../../src/envoy/messages.js';
import { duplicateMatches } from '../../../src/check/filter-chain-match.js';
import { docs, pa, se, snapshotOf, we, workload } from './fixtures.js';

/**
 * Inbound listeners per Istio's filter-chain tables for declared HTTP and TCP
 * ports, every mode, with and without a port-level override.
 */
type Mode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

interface ChainExpect { transport: 'tls' | 'raw_buffer'; alpn: boolean; tls: boolean; terminal: 'hcm' | 'tcp' }

const EXPECT: Record<Mode, Record<'http' | 'tcp', ChainExpect[]>> = {
  STRICT: {
    http: [{ transport: 'tls', alpn: false, tls: true, terminal: 'hcm' }],
    tcp: [{ transport: 'tls', alpn: false, tls: true, terminal: 'tcp' }],
  },
  PERMISSIVE: {
    http: [
      { transport: 'tls', alpn: true, tls: true, terminal: 'hcm' },
      { transport: 'raw_buffer', alpn: false, tls: false, terminal: 'hcm' },
    ],
    tcp: [
      { transport: 'tls', alpn: true, tls: true, terminal: 'tcp' },
      { transport: 'tls', alpn: false, tls: false, terminal: 'tcp' }, // passthrough of the app's own TLS
      { transport: 'raw_buffer', alpn: false, tls: false, terminal: 'tcp' },
    ],
  },
  DISABLE: {
    http: [{ transport: 'raw_buffer', alpn: false, tls: false, terminal: 'hcm' }],
    tcp: [{ transport: 'raw_buffer', alpn: false, tls: false, terminal: 'tcp' }],
  },
};

const PROTOCOLS = [
  { protocol: 'HTTP', kind: 'http' as const, h2: false },
  { protocol: 'GRPC', kind: 'http' as const, h2: true },
  { protocol: 'TCP', kind: 'tcp' as const, h2: false },
  { protocol: 'UNKNOWN', kind: 'tcp' as const, h2: false },
];

function config(nsMode: Mode, protocol: string, portOverride?: Mode, meshYaml?: string) {
  const snap = snapshotOf(docs(
    pa('app', 'default', nsMode),
    ...(portOverride ? [pa('app', 'port-override', 'UNSET', { selector: { app: 'srv' }, ports: { 9000: portOverride } })] : []),
    se('app', 'srv', { ports: [{ number: 80, name: 'main', protocol, targetPort: 9000 }], selector: { app: 'srv' } }),
    we('app', 'srv-1', { address: '10.1.0.5', labels: { app: 'srv' }, serviceAccount: 'srv' }),
  ), meshYaml);
  return buildProxyConfig(snap, workload(snap, 'app', 'srv-1'));
}

function inbound(listeners: readonly Listener[]): Listener {
  const l = listeners.filter((x) => x.traffic_direction === 'INBOUND');
  if (l.length !== 1) throw new Error(`expected one inbound listener, got ${l.length}`);
  return l[0]!;
}

function shape(c: FilterChain): ChainExpect {
  const f = c.filters![0]!;
  return {
    transport: c.filter_chain_match!.transport_protocol as 'tls' | 'raw_buffer',
    alpn: (c.filter_chain_match!.application_protocols ?? []).length > 0,
    tls: c.transport_socket !== undefined,
    terminal: f.name === 'envoy.filters.network.http_connection_manager' ? 'hcm' : 'tcp',
  };
}

for (const mode of ['STRICT', 'PERMISSIVE', 'DISABLE'] as const) {
  for (const override of [undefined, 'STRICT', 'PERMISSIVE', 'DISABLE'] as const) {
    for (const p of PROTOCOLS) {
      const effective = override ?? mode;
      t.test(`namespace ${mode}${override ? `, port 9000 ${override}` : ''}: ${p.protocol} port gets the ${effective} chains`, async (t) => {
        const c = config(mode, p.protocol, override);
        const l = inbound(c.listeners);
        t.equal(l.name, '10.1.0.5_9000', 'bound on the workload address and workload (target) port');
        t.same(l.address!.socket_address, { address: '10.1.0.5', port_value: 9000 });
        t.same(l.filter_chains!.map(shape), EXPECT[effective][p.kind], "chains per Istio's inbound filter-chain tables");
        t.ok(l.filter_chains!.every((ch) => ch.filter_chain_match?.destination_port?.value === 9000), 'every chain matches the destination port');
        t.same(duplicateMatches(l), [], 'no two chains share a match (Envoy would reject the listener)');
        const inspector = (l.listener_filters ?? []).some((f) => f.name === 'envoy.filters.listener.tls_inspector');
        t.equal(inspector, effective !== 'DISABLE', 'tls_inspector exactly when a chain matches tls');
        t.equal(l.access_log?.length, 1, 'listener-level access log (NR: no filter chain)');
        t.match(l.access_log?.[0], { filter: { response_flag_filter: { flags: ['NR'] } } });

        const cluster = c.clusters.find((x) => x.name === 'inbound|9000||') as Cluster;
        t.equal(cluster.type, 'STATIC');
        t.same(cluster.load_assignment!.endpoints![0]!.lb_endpoints![0]!.endpoint!.address!.socket_address, { address: '127.0.0.1', port_value: 9000 }, 'app on loopback at the workload port');
        t.equal(cluster.typed_extension_protocol_options !== undefined, p.h2, 'HTTP/2 to the app only for HTTP2/gRPC ports');

        for (const ch of l.filter_chains!) {
          const f = ch.filters![0]!.typed_config as unknown as Record<string, unknown>;
          if (ch.filters![0]!.name === 'envoy.filters.network.http_connection_manager') {
            t.equal(f.forward_client_cert_details, 'APPEND_FORWARD');
            t.match(f.set_current_client_cert_details, { uri: true });
            t.ok(f.route_config, 'inline route, not RDS, inbound');
            t.equal((f.access_log as unknown[]).length, 1, 'HCM access log');
          } else {
            t.equal(f.cluster, 'inbound|9000||');
            t.equal((f.access_log as unknown[]).length, 1, 'tcp_proxy access log');
          }
        }
      });
    }
  }
}

t.test('TLS chains: client certificate required, SDS default/ROOTCA over ADS, trust-domain prefixes, TLS ≥ 1.2, no istio ALPN advertised', async (t) => {
  const c = config('STRICT', 'HTTP', undefined, 'trustDomain: example.org\ntrustDomainAliases: [old.example.org]\n');
  const chain = inbound(c.listeners).filter_chains![0]!;
  const ctx = chain.transport_socket!.typed_config as Record<string, any>;
  t.equal(ctx['@type'], 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext');
  t.same(ctx.require_client_certificate, { value: true });
  const common = ctx.common_tls_context;
  t.same(common.alpn_protocols, ['h2', 'http/1.1']);
  t.equal(common.tls_params.tls_minimum_protocol_version, 'TLSv1_2');
  t.equal(common.tls_params.tls_maximum_protocol_version, 'TLSv1_3');
  t.same(common.tls_certificate_sds_secret_configs, [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: { seconds: 0 } } }]);
  t.equal(common.combined_validation_context.validation_context_sds_secret_config.name, 'ROOTCA');
  t.same(common.combined_validation_context.default_validation_context.match_typed_subject_alt_names, [
    { san_type: 'URI', matcher: { prefix: 'spiffe://example.org/' } },
    { san_type: 'URI', matcher: { prefix: 'spiffe://old.example.org/' } },
  ]);
});

t.test('meshMTLS.minProtocolVersion TLSV1_3 raises the inbound minimum', async (t) => {
  const c = config('STRICT', 'TCP', undefined, 'meshMTLS:\n  minProtocolVersion: TLSV1_3\n');
  const ctx = inbound(c.listeners).filter_chains![0]!.transport_socket!.typed_config as Record<string, any>;
  t.equal(ctx.common_tls_context.tls_params.tls_minimum_protocol_version, 'TLSv1_3');
});

t.test('PERMISSIVE TLS chains match the istio ALPNs but never istio-peer-exchange, anywhere in the config', async (t) => {
  for (const protocol of ['HTTP', 'TCP']) {
    const c = config('PERMISSIVE', protocol);
    const mtls = inbound(c.listeners).filter_chains![0]!;
    t.same(mtls.filter_chain_match!.application_protocols, ['istio', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2']);
    t.notMatch(JSON.stringify(c), /istio-peer-exchange/, `${protocol}: not offered, advertised or matched`);
  }
});

t.test('a workload on 127.0.0.1 (where its app listens) gets no inbound listener, with a warning', async (t) => {
  const snap = snapshotOf(docs(
    se('app', 'srv', { ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], selector: { app: 'srv' } }),
    we('app', 'srv-1', { address: '127.0.0.1', labels: { app: 'srv' } }),
  ));
  const c = buildProxyConfig(snap, workload(snap, 'app', 'srv-1'));
  t.equal(c.listeners.filter((l) => l.traffic_direction === 'INBOUND').length, 0);
  t.match(c.warnings.join('\n'), /127\.0\.0\.1 is where the app listens/);
});

t.test('two ServiceEntries on one workload port: one listener, the oldest decides the protocol', async (t) => {
  const snap = snapshotOf(docs(
    se('app', 'old', { created: '2024-01-01T00:00:00Z', ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 9000 }], selector: { app: 'srv' } }),
    se('app', 'new', { created: '2025-01-01T00:00:00Z', ports: [{ number: 90, name: 'tcp', protocol: 'TCP', targetPort: 9000 }], selector: { app: 'srv' } }),
    we('app', 'srv-1', { address: '10.1.0.5', labels: { app: 'srv' } }),
  ));
  const c = buildProxyConfig(snap, workload(snap, 'app', 'srv-1'));
  const l = c.listeners.filter((x) => x.traffic_direction === 'INBOUND');
  t.equal(l.length, 1);
  t.equal(l[0]!.filter_chains![0]!.filters![0]!.name, 'envoy.filters.network.http_connection_manager');
  t.match(c.warnings.join('\n'), /workload port 9000 is HTTP in ServiceEntry app\/old but TCP in ServiceEntry app\/new/);
});

t.test('WorkloadEntry ports map a service port name to its own workload port', async (t) => {
  const snap = snapshotOf(docs(
    se('app', 'srv', { ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 9000 }], selector: { app: 'srv' } }),
    we('app', 'srv-1', { address: '10.1.0.5', labels: { app: 'srv' }, ports: { http: 9100 } }),
  ));
  const c = buildProxyConfig(snap, workload(snap, 'app', 'srv-1'));
  t.same(c.listeners.filter((x) => x.traffic_direction === 'INBOUND').map((l) => l.name), ['10.1.0.5_9100']);
  t.ok(c.clusters.some((x) => x.name === 'inbound|9100||'));
});
