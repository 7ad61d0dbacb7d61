import t from 'tap';
import { buildProxyConfig } from '../../../src/xds/generators/proxy-config.js';
import type { Cluster } from '../../../src/envoy/messages.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';
import { configPushRequest } from '../../../src/xds/push-plan/affected-proxies.js';
import { SYSTEM_CA_BUNDLE } from '../../../src/xds/generators/cluster-tls.js';
import { envoyRejects } from './envoy-accepts.js';
import { docs, identity, pa, proxyFor, se, snapshotOf, we, workload } from './fixtures.js';

/**
 * DestinationRule tls → the client's outbound cluster, mode by mode, as istiod's
 * cluster_tls.go builds it: each mode changes exactly the transport socket (auto mTLS's
 * transport_socket_matches give way to it), every cluster still decodes strictly, and only
 * the clients that select the rule see it.
 */
const SERVICES = [
  se('srv', 'web', { ports: [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 9090, name: 'grpc', protocol: 'GRPC' }], selector: { app: 'web' } }),
  we('srv', 'web-1', { address: '10.1.0.1', labels: { app: 'web' }, serviceAccount: 'web' }),
  se('ext', 'api', { hosts: ['api.example.com'], location: 'MESH_EXTERNAL', resolution: 'DNS', ports: [{ number: 443, name: 'tls', protocol: 'TLS' }] }),
  we('cli', 'cli-1', { address: '10.2.0.1', labels: { app: 'cli' }, serviceAccount: 'cli' }),
  we('other', 'o-1', { address: '10.3.0.1', labels: { app: 'o' }, serviceAccount: 'o' }),
];

function dr(namespace: string, name: string, host: string, trafficPolicy: string, exportTo?: string): string {
  return [
    'apiVersion: networking.istio.io/v1', 'kind: DestinationRule', 'metadata:', `  name: ${name}`, `  namespace: ${namespace}`, 'spec:', `  host: ${host}`,
    ...(exportTo ? [`  exportTo: ["${exportTo}"]`] : []),
    '  trafficPolicy:', ...trafficPolicy.split('\n').filter((l) => l.trim() !== '').map((l) => `    ${l}`),
  ].join('\n');
}

function clusters(ns: string, name: string, ...extra: string[]): Map<string, Cluster> {
  const snap = snapshotOf(docs(pa('srv', 'default', 'STRICT'), ...SERVICES, ...extra));
  const c = buildProxyConfig(snap, workload(snap, ns, name));
  for (const cl of c.clusters) {
    const problems = envoyRejects(TypeUrl.Cluster, cl);
    if (problems.length > 0) throw new Error(`${cl.name}: ${problems.join('; ')}`);
  }
  return new Map(c.clusters.map((x) => [x.name!, x]));
}

const WEB80 = 'outbound|80||web.srv.svc.cluster.local';
const WEB9090 = 'outbound|9090||web.srv.svc.cluster.local';
const API = 'outbound|443||api.example.com';

type Ctx = { common_tls_context: Record<string, any>; sni?: string };
const ctxOf = (c: Cluster): Ctx => c.transport_socket!.typed_config as unknown as Ctx;

t.test('no DestinationRule: auto mTLS (transport_socket_matches) inside the mesh, plaintext to the external host', async (t) => {
  const cs = clusters('cli', 'cli-1');
  t.same(cs.get(WEB80)!.transport_socket_matches!.map((m) => m.name), ['tlsMode-istio', 'tlsMode-disabled']);
  t.equal(cs.get(WEB80)!.transport_socket, undefined);
  t.equal(cs.get(API)!.transport_socket, undefined);
  t.equal(cs.get(API)!.transport_socket_matches, undefined);
});

t.test('DISABLE: plaintext even though the endpoints are labelled for mTLS', async (t) => {
  const cs = clusters('cli', 'cli-1', dr('srv', 'plain', 'web', 'tls:\n  mode: DISABLE'));
  t.equal(cs.get(WEB80)!.transport_socket, undefined, 'no transport socket');
  t.equal(cs.get(WEB80)!.transport_socket_matches, undefined, 'and no auto mTLS matches');
});

t.test('ISTIO_MUTUAL: the mesh certificate over SDS, mesh SNI and the service\'s SPIFFE ID unless the rule names others', async (t) => {
  const cs = clusters('cli', 'cli-1', dr('srv', 'mtls', 'web', 'tls:\n  mode: ISTIO_MUTUAL'));
  const ctx = ctxOf(cs.get(WEB80)!);
  t.equal(cs.get(WEB80)!.transport_socket_matches, undefined, 'one transport socket for every endpoint');
  t.equal(ctx.sni, 'outbound_.80_._.web.srv.svc.cluster.local');
  t.same(ctx.common_tls_context.tls_certificate_sds_secret_configs.map((s: { name: string }) => s.name), ['default']);
  t.same(ctx.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names, [{ san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/srv/sa/web' } }]);
  const named = ctxOf(clusters('cli', 'cli-1', dr('srv', 'mtls', 'web', 'tls:\n  mode: ISTIO_MUTUAL\n  sni: my.sni\n  subjectAltNames: ["spiffe://cluster.local/ns/srv/sa/other"]')).get(WEB80)!);
  t.equal(named.sni, 'my.sni', 'the rule\'s sni');
  t.same(named.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names[0].matcher, { exact: 'spiffe://cluster.local/ns/srv/sa/other' }, 'the rule\'s SANs');
});

t.test('SIMPLE to an external host: sni, CA file, SANs; the system CA bundle without caCertificates; no verification with insecureSkipVerify', async (t) => {
  const ctx = ctxOf(clusters('cli', 'cli-1', dr('ext', 'api', 'api.example.com', 'tls:\n  mode: SIMPLE\n  sni: api.example.com\n  caCertificates: /etc/meshd/ca.pem\n  subjectAltNames: ["api.example.com"]')).get(API)!);
  t.equal(ctx.sni, 'api.example.com');
  t.same(ctx.common_tls_context.validation_context, { trusted_ca: { filename: '/etc/meshd/ca.pem' }, match_subject_alt_names: [{ exact: 'api.example.com' }] });
  t.notOk('tls_certificate_sds_secret_configs' in ctx.common_tls_context, 'no mesh certificate is presented');
  t.notOk('alpn_protocols' in ctx.common_tls_context, 'no ALPN on a TLS (non-HTTP/2) port');
  const system = ctxOf(clusters('cli', 'cli-1', dr('ext', 'api', 'api.example.com', 'tls:\n  mode: SIMPLE')).get(API)!);
  t.same(system.common_tls_context.validation_context, { trusted_ca: { filename: SYSTEM_CA_BUNDLE } }, 'system CA bundle');
  t.equal(system.sni, undefined, 'no sni unless given');
  const skip = ctxOf(clusters('cli', 'cli-1', dr('ext', 'api', 'api.example.com', 'tls:\n  mode: SIMPLE\n  insecureSkipVerify: true')).get(API)!);
  t.same(skip.common_tls_context.validation_context, {}, 'insecureSkipVerify: an empty validation context');
});

t.test('MUTUAL with files: client certificate and key from the sidecar\'s host; h2 ALPN on an HTTP/2 port', async (t) => {
  const cs = clusters('cli', 'cli-1', dr('srv', 'mutual', 'web', 'tls:\n  mode: MUTUAL\n  clientCertificate: /certs/cert.pem\n  privateKey: /certs/key.pem\n  caCertificates: /certs/ca.pem'));
  for (const name of [WEB80, WEB9090]) {
    const ctx = ctxOf(cs.get(name)!);
    t.same(ctx.common_tls_context.tls_certificates, [{ certificate_chain: { filename: '/certs/cert.pem' }, private_key: { filename: '/certs/key.pem' } }], `${name}: client cert and key`);
    t.same(ctx.common_tls_context.validation_context.trusted_ca, { filename: '/certs/ca.pem' });
  }
  t.same(ctxOf(cs.get(WEB9090)!).common_tls_context.alpn_protocols, ['h2'], 'GRPC port: h2');
});

t.test('portLevelSettings replaces the rule\'s tls for its port only', async (t) => {
  const cs = clusters('cli', 'cli-1', dr('srv', 'ports', 'web', 'tls:\n  mode: DISABLE\nportLevelSettings:\n- port:\n    number: 9090\n  tls:\n    mode: ISTIO_MUTUAL'));
  t.equal(cs.get(WEB80)!.transport_socket, undefined, '80: DISABLE');
  t.equal(ctxOf(cs.get(WEB9090)!).sni, 'outbound_.9090_._.web.srv.svc.cluster.local', '9090: ISTIO_MUTUAL');
});

t.test('exportTo: a rule private to its namespace leaves other namespaces\' clusters as they were; pushes go to clusters that changed', async (t) => {
  const rule = dr('cli', 'mine', 'web.srv.svc.cluster.local', 'tls:\n  mode: DISABLE', '.');
  t.equal(clusters('cli', 'cli-1', rule).get(WEB80)!.transport_socket_matches, undefined, 'cli selects its own rule');
  t.same(JSON.stringify(clusters('other', 'o-1', rule).get(WEB80)), JSON.stringify(clusters('other', 'o-1').get(WEB80)), 'other: unchanged');

  const prev = snapshotOf(docs(pa('srv', 'default', 'STRICT'), ...SERVICES));
  const next = snapshotOf(docs(pa('srv', 'default', 'STRICT'), ...SERVICES, rule), undefined, prev);
  const req = configPushRequest(prev, next)!;
  const pred = req.proxies as (p: ReturnType<typeof proxyFor>) => boolean;
  t.ok(pred(proxyFor('cli', 'cli-1', identity('cli', 'cli'))), 'cli-1 pushed');
  t.notOk(pred(proxyFor('other', 'o-1', identity('other', 'o'))), 'o-1 not pushed');
  t.notOk(pred(proxyFor('srv', 'web-1', identity('srv', 'web'))), 'web-1 not pushed');
  t.same((req.typeUrls as (p: ReturnType<typeof proxyFor>) => readonly string[])(proxyFor('cli', 'cli-1', identity('cli', 'cli'))), [TypeUrl.Cluster], 'CDS only');
});

t.test('meshd check follows the DestinationRule: DISABLE into STRICT is reset; SIMPLE presents no mesh certificate', async (t) => {
  const { simulateConnection } = await import('../../../src/check/simulate-connection.js');
  const check = (rule: string): { outcome: string; summary: string } => {
    const snap = snapshotOf(docs(pa('srv', 'default', 'STRICT'), ...SERVICES, rule));
    return simulateConnection(snap, { kind: 'workload', workload: workload(snap, 'cli', 'cli-1') }, workload(snap, 'srv', 'web-1'), 80);
  };
  t.equal(check(dr('srv', 'x', 'web', 'tls:\n  mode: DISABLE')).outcome, 'reset', 'DISABLE: plaintext into STRICT matches no chain');
  const simple = check(dr('srv', 'x', 'web', 'tls:\n  mode: SIMPLE'));
  t.equal(simple.outcome, 'handshake-failure');
  t.match(simple.summary, /requires a client certificate and the client has none/);
  t.equal(check(dr('srv', 'x', 'web', 'tls:\n  mode: ISTIO_MUTUAL')).outcome, 'mtls', 'ISTIO_MUTUAL: mTLS');
});
