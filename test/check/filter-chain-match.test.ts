import t from 'tap';
import { selectFilterChain, detectedFacts, duplicateMatches, type ConnectionFacts } from '../../src/check/filter-chain-match.js';
import type { FilterChain, Listener } from '../../src/envoy/messages.js';
import { buildProxyConfig } from '../../src/xds/generators/proxy-config.js';
import { docs, pa, se, snapshotOf, we, workload } from '../xds/generators/fixtures.js';

function chain(name: string, m: FilterChain['filter_chain_match']): FilterChain {
  return { name, ...(m ? { filter_chain_match: m } : {}), filters: [] };
}

function listener(chains: FilterChain[], inspector = true): Listener {
  return {
    name: 'l', address: { socket_address: { address: '10.0.0.1', port_value: 80 } }, traffic_direction: 'INBOUND', filter_chains: chains,
    ...(inspector ? { listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }] } : {}),
  };
}

const facts = (f: Partial<ConnectionFacts>): ConnectionFacts => ({ destinationPort: 80, transportProtocol: 'raw_buffer', applicationProtocols: [], ...f });

const rows: Array<{ name: string; chains: FilterChain[]; facts: ConnectionFacts; want: string | undefined }> = [
  { name: 'port-specific chain beats a portless one', chains: [chain('any', {}), chain('p80', { destination_port: { value: 80 } })], facts: facts({}), want: 'p80' },
  { name: 'portless chain used when no chain names the port', chains: [chain('any', {}), chain('p81', { destination_port: { value: 81 } })], facts: facts({}), want: 'any' },
  {
    name: 'no backtracking: the port-specific group fails on transport, the portless plaintext chain is not tried',
    chains: [chain('p80-tls', { destination_port: { value: 80 }, transport_protocol: 'tls' }), chain('any-raw', { transport_protocol: 'raw_buffer' })],
    facts: facts({}), want: undefined,
  },
  { name: 'exact transport beats empty', chains: [chain('tls', { transport_protocol: 'tls' }), chain('any', {})], facts: facts({ transportProtocol: 'tls' }), want: 'tls' },
  { name: 'empty transport catches what no chain names', chains: [chain('tls', { transport_protocol: 'tls' }), chain('any', {})], facts: facts({}), want: 'any' },
  {
    name: 'ALPN: the first offered protocol some chain names wins',
    chains: [chain('h2', { application_protocols: ['h2'] }), chain('istio', { application_protocols: ['istio'] }), chain('none', {})],
    facts: facts({ transportProtocol: 'tls', applicationProtocols: ['istio', 'h2'] }), want: 'istio',
  },
  { name: 'ALPN: no named protocol offered → chain without ALPN', chains: [chain('istio', { application_protocols: ['istio'] }), chain('none', {})], facts: facts({ transportProtocol: 'tls', applicationProtocols: ['h2'] }), want: 'none' },
  { name: 'ALPN: nothing fits → no chain', chains: [chain('istio', { application_protocols: ['istio'] })], facts: facts({ transportProtocol: 'tls', applicationProtocols: ['h2'] }), want: undefined },
  { name: 'SNI exact beats wildcard', chains: [chain('wild', { server_names: ['*.example.com'] }), chain('exact', { server_names: ['a.example.com'] })], facts: facts({ serverName: 'a.example.com' }), want: 'exact' },
  { name: 'SNI wildcard beats none', chains: [chain('wild', { server_names: ['*.example.com'] }), chain('none', {})], facts: facts({ serverName: 'b.example.com' }), want: 'wild' },
  { name: 'identical matches are ambiguous (Envoy rejects the listener)', chains: [chain('a', {}), chain('b', {})], facts: facts({}), want: undefined },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const r = selectFilterChain(listener(row.chains), row.facts);
    t.equal(r.matched ? r.chain.name : undefined, row.want);
  });
}

t.test('without tls_inspector every connection is raw_buffer with no ALPN', async (t) => {
  t.same(detectedFacts(listener([], false), 80, { tls: true, alpn: ['istio'], sni: 'x' }), { destinationPort: 80, transportProtocol: 'raw_buffer', applicationProtocols: [] });
  t.same(detectedFacts(listener([], true), 80, { tls: true, alpn: ['istio'], sni: 'x' }), { destinationPort: 80, transportProtocol: 'tls', applicationProtocols: ['istio'], serverName: 'x' });
});

t.test('duplicateMatches finds chains Envoy would refuse', async (t) => {
  t.same(duplicateMatches(listener([chain('a', { transport_protocol: 'tls', application_protocols: ['x', 'y'] }), chain('b', { transport_protocol: 'tls', application_protocols: ['y', 'x'] })])), ['a and b']);
});

/** Generated listeners against TLS clients that are not mesh sidecars (they offer no istio ALPN). */
t.test('a non-mesh TLS client (ALPN h2) on generated listeners', async (t) => {
  const cases = [
    { mode: 'STRICT', protocol: 'HTTP', want: 'inbound|9000|mtls' },
    { mode: 'STRICT', protocol: 'TCP', want: 'inbound|9000|mtls' },
    { mode: 'PERMISSIVE', protocol: 'HTTP', want: undefined },
    { mode: 'PERMISSIVE', protocol: 'TCP', want: 'inbound|9000|tls-passthrough' },
    { mode: 'DISABLE', protocol: 'TCP', want: 'inbound|9000|plaintext' },
  ];
  for (const c of cases) {
    const snap = snapshotOf(docs(
      pa('srv', 'default', c.mode),
      se('srv', 'api', { ports: [{ number: 80, name: 'main', protocol: c.protocol, targetPort: 9000 }], selector: { app: 'api' } }),
      we('srv', 'api-1', { address: '10.0.1.1', labels: { app: 'api' }, serviceAccount: 'api' }),
    ));
    const l = buildProxyConfig(snap, workload(snap, 'srv', 'api-1')).listeners.find((x) => x.traffic_direction === 'INBOUND')!;
    const r = selectFilterChain(l, detectedFacts(l, 9000, { tls: true, alpn: ['h2', 'http/1.1'], sni: 'api.example' }));
    t.equal(r.matched ? r.chain.name : undefined, c.want, `${c.mode} ${c.protocol}`);
  }
});
