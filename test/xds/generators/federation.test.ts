import t, { type Test } from 'tap';
import { buildProxyConfig, type ProxyConfig } from '../../../src/xds/generators/proxy-config.js';
import type { Cluster, Listener } from '../../../src/envoy/messages.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';
import { affectedWorkloads } from '../../../src/xds/push-plan/affected-proxies.js';
import { docs, se, snapshotOf, we, workload } from './fixtures.js';
import { envoyRejects } from './envoy-accepts.js';

/**
 * Sidecar config across federated trust domains: a ServiceEntry for a service of another mesh
 * pins that mesh's SPIFFE IDs (subjectAltNames) and validates them with the ALL secret (one bundle
 * per trust domain); inbound mTLS accepts the federated trust domains' workloads the same way.
 * Without federation, nothing changes: ROOTCA and the own trust domain only.
 */

const WEST_ID = 'spiffe://west.example/ns/pay/sa/api';
const CLIENT = we('shop', 'web-1', { address: '10.0.0.2', labels: { app: 'web' }, serviceAccount: 'web', ports: { http: 8080 } });
const WEB_SVC = se('shop', 'web', { ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], selector: { app: 'web' } });
const WEST_SVC = [
  'apiVersion: networking.istio.io/v1', 'kind: ServiceEntry', 'metadata:', '  name: pay-west', '  namespace: shop', 'spec:',
  '  hosts: ["api.pay.west.example"]', '  location: MESH_INTERNAL', '  resolution: STATIC',
  '  ports:', '  - {number: 9080, name: http, protocol: HTTP}',
  '  endpoints:', '  - address: 10.9.0.1', '    labels: {security.istio.io/tlsMode: istio}',
  '  subjectAltNames:', `  - ${WEST_ID}`,
].join('\n');
const FEDERATION = [
  'apiVersion: spire.spiffe.io/v1alpha1', 'kind: ClusterFederatedTrustDomain', 'metadata: {name: west}', 'spec:',
  '  trustDomain: west.example', '  bundleEndpointURL: https://meshd.west.example:8443/', '  bundleEndpointProfile: {type: https_web}',
].join('\n');

function config(...objects: string[]): ProxyConfig {
  const snap = snapshotOf(docs(CLIENT, WEB_SVC, ...objects), 'trustDomain: east.example\n');
  return buildProxyConfig(snap, workload(snap, 'shop', 'web-1'));
}

function upstreamValidation(t: Test, c: ProxyConfig, name: string): { sans: unknown; secret: string } {
  const cluster = c.clusters.find((x) => x.name === name) as Cluster;
  if (!cluster) throw new Error(`no cluster ${name}`);
  t.same(envoyRejects(TypeUrl.Cluster, cluster), [], `${name} decodes strictly`);
  const ctx = cluster.transport_socket_matches![0]!.transport_socket!.typed_config as Record<string, any>;
  const combined = ctx.common_tls_context.combined_validation_context;
  return { sans: combined.default_validation_context.match_typed_subject_alt_names, secret: combined.validation_context_sds_secret_config.name };
}

function inboundValidation(t: Test, c: ProxyConfig): { sans: unknown; secret: string } {
  const listener = c.listeners.find((l) => l.traffic_direction === 'INBOUND') as Listener;
  t.same(envoyRejects(TypeUrl.Listener, listener), [], 'the inbound listener decodes strictly');
  const chain = listener.filter_chains!.find((f) => f.filter_chain_match?.transport_protocol === 'tls')!;
  const ctx = chain.transport_socket!.typed_config as Record<string, any>;
  const combined = ctx.common_tls_context.combined_validation_context;
  return { sans: combined.default_validation_context.match_typed_subject_alt_names, secret: combined.validation_context_sds_secret_config.name };
}

t.test('a ServiceEntry of another mesh: its subjectAltNames are the exact server IDs, validated with ALL', async (t) => {
  const c = config(WEST_SVC, FEDERATION);
  // Only west's ID: the inline endpoint names no serviceAccount, so it adds no identity of this mesh
  // (as Istio's convertEndpoint); east's shop/default cannot answer for the west service.
  t.same(upstreamValidation(t, c, 'outbound|9080||api.pay.west.example'), {
    sans: [{ san_type: 'URI', matcher: { exact: WEST_ID } }],
    secret: 'ALL',
  });
  t.same(upstreamValidation(t, c, 'outbound|8080||web.shop.svc.cluster.local'), {
    sans: [{ san_type: 'URI', matcher: { exact: 'spiffe://east.example/ns/shop/sa/web' } }],
    secret: 'ROOTCA',
  }, 'a service of the own mesh keeps ROOTCA');
});

t.test('a DestinationRule ISTIO_MUTUAL to the other mesh\'s service validates with ALL too; to an own service, ROOTCA', async (t) => {
  const dr = (name: string, host: string, sans: string[] = []): string => [
    'apiVersion: networking.istio.io/v1', 'kind: DestinationRule', `metadata: {name: ${name}, namespace: shop}`, 'spec:',
    `  host: ${host}`, '  trafficPolicy:', '    tls:', '      mode: ISTIO_MUTUAL',
    ...(sans.length > 0 ? ['      subjectAltNames:', ...sans.map((s) => `      - ${s}`)] : []),
  ].join('\n');
  const c = config(WEST_SVC, FEDERATION, dr('west', 'api.pay.west.example'), dr('own', 'web.shop.svc.cluster.local'));
  const explicit = (name: string): { sans: unknown; secret: string } => {
    const cluster = c.clusters.find((x) => x.name === name) as Cluster;
    t.same(envoyRejects(TypeUrl.Cluster, cluster), [], `${name} decodes strictly`);
    const combined = (cluster.transport_socket!.typed_config as Record<string, any>).common_tls_context.combined_validation_context;
    return { sans: combined.default_validation_context.match_typed_subject_alt_names, secret: combined.validation_context_sds_secret_config.name };
  };
  t.same(explicit('outbound|9080||api.pay.west.example').secret, 'ALL', 'the west server is verified by west\'s own bundle');
  t.same(explicit('outbound|9080||api.pay.west.example').sans, [{ san_type: 'URI', matcher: { exact: WEST_ID } }]);
  t.same(explicit('outbound|8080||web.shop.svc.cluster.local').secret, 'ROOTCA', 'an own service stays on ROOTCA');
  const pinned = config(WEST_SVC, FEDERATION, dr('west', 'api.pay.west.example', ['spiffe://east.example/ns/pay/sa/api']));
  const cluster = pinned.clusters.find((x) => x.name === 'outbound|9080||api.pay.west.example') as Cluster;
  const secret = (cluster.transport_socket!.typed_config as Record<string, any>).common_tls_context.combined_validation_context.validation_context_sds_secret_config.name;
  t.equal(secret, 'ROOTCA', 'subjectAltNames of the own trust domain only: ROOTCA');
});

t.test('inbound mTLS accepts federated trust domains only while federating, each by its own bundle', async (t) => {
  t.same(inboundValidation(t, config(FEDERATION)), {
    sans: [{ san_type: 'URI', matcher: { prefix: 'spiffe://east.example/' } }, { san_type: 'URI', matcher: { prefix: 'spiffe://west.example/' } }],
    secret: 'ALL',
  });
  t.same(inboundValidation(t, config()), { sans: [{ san_type: 'URI', matcher: { prefix: 'spiffe://east.example/' } }], secret: 'ROOTCA' }, 'unchanged without federation');
});

t.test('starting or ending a federation re-pushes every workload; an endpoint URL change alone does not', async (t) => {
  const mesh = 'trustDomain: east.example\n';
  const without = snapshotOf(docs(CLIENT, WEB_SVC), mesh);
  const withWest = snapshotOf(docs(CLIENT, WEB_SVC, FEDERATION), mesh, without);
  t.equal(affectedWorkloads(without, withWest).all, true);
  t.equal(affectedWorkloads(withWest, without).all, true);
  const moved = snapshotOf(docs(CLIENT, WEB_SVC, FEDERATION.replace('meshd.west.example:8443', 'bundles.west.example')), mesh, withWest);
  t.equal(affectedWorkloads(withWest, moved).all, false);
});
