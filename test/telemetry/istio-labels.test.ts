import t from 'tap';
import { loadConfigDir } from '../../src/config/load-config-dir.js';
import {
  capLabel, connectionSecurityPolicy, grpcResponseStatus, hostOfAuthority, peerLabels,
  requestProtocol, serviceFromCluster, serviceLabels,
} from '../../src/telemetry/istio-labels.js';
import { meshWorkloadResolver } from '../../src/telemetry/mesh-resolver.js';
import { IdentifierError, localWorkload } from '../../src/telemetry/log-identifier.js';
import { UNKNOWN_RESOLVER } from '../../src/telemetry/workload-resolver.js';
import type { Identity } from '../../src/auth/identity.js';
import { repoPath } from '../helpers/repo.js';

t.test('connection_security_policy follows Istio: unknown for source, mutual_tls needs both SANs', async (t) => {
  const table: [reporter: 'source' | 'destination', peer: string, local: string, want: string][] = [
    ['destination', 'spiffe://td/ns/a/sa/x', 'spiffe://td/ns/b/sa/y', 'mutual_tls'],
    ['destination', '', 'spiffe://td/ns/b/sa/y', 'none'], // TLS without a client certificate
    ['destination', '', '', 'none'], // plaintext
    ['source', 'spiffe://td/ns/a/sa/x', 'spiffe://td/ns/b/sa/y', 'unknown'],
    ['source', '', '', 'unknown'],
  ];
  for (const [reporter, peer, local, want] of table) t.equal(connectionSecurityPolicy(reporter, peer, local), want, `${reporter} ${peer !== ''} ${local !== ''}`);
});

t.test('request_protocol and grpc_response_status', async (t) => {
  const table: [contentType: string, logged: string, code: number, protocol: string, status: string][] = [
    ['', '', 200, 'http', ''],
    ['application/json', '', 503, 'http', ''],
    ['application/grpc', '0', 200, 'grpc', '0'],
    ['application/grpc+proto', '14', 200, 'grpc', '14'],
    ['', '7', 200, 'grpc', '7'], // grpc-status logged but content-type not: still gRPC
    ['application/grpc', '', 503, 'grpc', '14'], // no status: HTTP→gRPC mapping
    ['application/grpc', '', 404, 'grpc', '12'],
    ['application/grpc', '', 200, 'grpc', '2'],
    ['application/grpc', '', 0, 'grpc', ''], // no response at all
  ];
  for (const [ct, logged, code, protocol, status] of table) {
    const p = requestProtocol(ct, logged);
    t.equal(p, protocol, `${ct} ${logged} protocol`);
    t.equal(grpcResponseStatus(p, logged, code), status, `${ct} ${logged} ${code} status`);
  }
});

t.test('destination_service from Istio cluster names and :authority', async (t) => {
  const clusters: [string, string | undefined][] = [
    ['outbound|9080||reviews.default.svc.cluster.local', 'reviews.default.svc.cluster.local'],
    ['outbound|9080|v2|reviews.default.svc.cluster.local', 'reviews.default.svc.cluster.local'],
    ['inbound|9080||', undefined],
    ['inbound|8080||api.payments.svc.cluster.local', 'api.payments.svc.cluster.local'],
    ['PassthroughCluster', 'PassthroughCluster'],
    ['BlackHoleCluster', 'BlackHoleCluster'],
    ['InboundPassthroughClusterIpv4', 'InboundPassthroughClusterIpv4'],
    ['my-static-cluster', undefined],
    ['', undefined],
  ];
  for (const [cluster, want] of clusters) t.equal(serviceFromCluster(cluster), want, cluster || '(empty)');
  const authorities: [string, string][] = [
    ['reviews:9080', 'reviews'], ['reviews', 'reviews'], ['10.0.0.1:80', '10.0.0.1'], ['[::1]:8080', '::1'], ['::1', '::1'],
  ];
  for (const [a, want] of authorities) t.equal(hostOfAuthority(a), want, a);
  t.strictSame(
    (({ service, name, namespace }) => ({ service, name, namespace }))(serviceLabels('reviews.default.svc.cluster.local', undefined)),
    { service: 'reviews.default.svc.cluster.local', name: 'reviews', namespace: 'default' },
  );
  t.match(serviceLabels('api.example.com', (h) => (h === 'api.example.com' ? { name: h, namespace: 'egress' } : undefined)), { name: 'api.example.com', namespace: 'egress' });
  t.match(serviceLabels('PassthroughCluster', () => ({ name: 'x', namespace: 'y' })), { service: 'PassthroughCluster', name: 'PassthroughCluster', namespace: 'unknown' });
  t.match(serviceLabels(undefined, undefined), { service: 'unknown', name: 'unknown', namespace: 'unknown' });
});

t.test('peer labels: unknown, never an error; canonical revision defaults to latest', async (t) => {
  t.match(peerLabels(undefined, undefined), {
    workload: 'unknown', namespace: 'unknown', principal: 'unknown', app: 'unknown', version: 'unknown',
    canonicalService: 'unknown', canonicalRevision: 'latest', cluster: 'unknown',
  });
  t.match(peerLabels(undefined, 'spiffe://cluster.local/ns/shop/sa/web'), { namespace: 'shop', workload: 'unknown', principal: 'spiffe://cluster.local/ns/shop/sa/web' });
  t.match(peerLabels({ workload: 'web-1', namespace: 'shop', labels: { 'app.kubernetes.io/name': 'web', 'app.kubernetes.io/version': '2.1' } }, undefined, 'Kubernetes'), {
    app: 'web', version: '2.1', canonicalService: 'web', canonicalRevision: '2.1', cluster: 'Kubernetes',
  });
  t.match(peerLabels({ workload: 'web-1', namespace: 'shop', labels: { app: 'web', 'service.istio.io/canonical-name': 'storefront', 'service.istio.io/canonical-revision': 'canary' } }, undefined), {
    app: 'web', canonicalService: 'storefront', canonicalRevision: 'canary',
  });
  t.equal(capLabel('x'.repeat(300)).length, 256);
});

const identity = (ns: string, sa: string): Identity => ({ spiffeId: `spiffe://cluster.local/ns/${ns}/sa/${sa}`, trustDomain: 'cluster.local', namespace: ns, serviceAccount: sa, via: 'token' });

t.test('the local workload: metadata first, identity for namespace and principal, a claimed other namespace refused', async (t) => {
  const ident = { nodeId: 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local', nodeCluster: 'api-1.payments', logName: 'meshd.inbound', metadata: { NAMESPACE: 'payments', WORKLOAD_NAME: 'api-1', LABELS: { app: 'payments-api', version: 'v1' }, CLUSTER_ID: 'east' } };
  t.match(localWorkload(ident, identity('payments', 'payments-api'), UNKNOWN_RESOLVER, 'Kubernetes'), {
    workload: 'api-1', namespace: 'payments', principal: 'spiffe://cluster.local/ns/payments/sa/payments-api', labels: { app: 'payments-api', version: 'v1' }, cluster: 'east',
  });
  // No metadata: the node id, and the default cluster.
  t.match(localWorkload({ ...ident, metadata: {} }, identity('payments', 'payments-api'), UNKNOWN_RESOLVER, 'Kubernetes'), { workload: 'api-1', cluster: 'Kubernetes' });
  t.throws(() => localWorkload(ident, identity('shop', 'web'), UNKNOWN_RESOLVER, undefined), IdentifierError);
});

t.test('the mesh resolver over examples/config', async (t) => {
  const snapshot = await loadConfigDir(repoPath('examples/config'));
  const r = meshWorkloadResolver(snapshot, 'Kubernetes');
  t.match(r.byAddress('127.0.0.11'), {
    workload: 'api-1', namespace: 'payments', principal: 'spiffe://cluster.local/ns/payments/sa/payments-api',
    labels: { app: 'payments-api', version: 'v1' }, service: 'api.payments.svc.cluster.local', cluster: 'Kubernetes',
  });
  const cache = r.byAddress('127.0.0.31');
  t.match(cache, { workload: 'cache-1', namespace: 'legacy', service: 'cache.legacy.svc.cluster.local' });
  t.equal(cache?.principal, undefined, 'no service account, no principal');
  t.equal(r.byAddress('10.9.9.9'), undefined);
  t.match(r.byPrincipal?.('spiffe://cluster.local/ns/payments/sa/payments-api'), { namespace: 'payments' });
  t.strictSame(r.serviceByHost?.('cache.legacy.svc.cluster.local'), { name: 'cache.legacy.svc.cluster.local', namespace: 'legacy' });
  // The local side for api-1's sidecar, from the registry when metadata has no WORKLOAD_NAME/LABELS.
  t.match(localWorkload({ nodeId: 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local', nodeCluster: '', logName: 'meshd.inbound', metadata: {} }, identity('payments', 'payments-api'), r, undefined), {
    workload: 'api-1', labels: { app: 'payments-api' }, service: 'api.payments.svc.cluster.local', cluster: 'Kubernetes',
  });
});
