import t from 'tap';
import {
  controlPlaneSpiffeId, expandWithTrustDomains, namespaceOfPrincipal, parseWorkloadSpiffeId, serviceAccountOf,
  trustDomainsForValidation, workloadSpiffeId,
} from '../../src/mesh/spiffe-identity.js';
import type { MeshSettings } from '../../src/config/model.js';

t.test('workload and control-plane identities in Istio form', async (t) => {
  t.equal(workloadSpiffeId('cluster.local', 'shop', 'web'), 'spiffe://cluster.local/ns/shop/sa/web');
  t.equal(controlPlaneSpiffeId('example.org'), 'spiffe://example.org/ns/istio-system/sa/meshd');
  t.equal(serviceAccountOf('web'), 'web');
  t.equal(serviceAccountOf(''), 'default', 'a WorkloadEntry without serviceAccount runs as default');
  t.equal(serviceAccountOf(undefined), 'default');
});

t.test('parseWorkloadSpiffeId reads exactly spiffe://<td>/ns/<ns>/sa/<sa>', async (t) => {
  t.strictSame(parseWorkloadSpiffeId('spiffe://cluster.local/ns/shop/sa/web'), { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' });
  const id = workloadSpiffeId('example.org', 'istio-system', 'meshd');
  t.strictSame(parseWorkloadSpiffeId(id), { trustDomain: 'example.org', namespace: 'istio-system', serviceAccount: 'meshd' }, 'parse(format(x)) = x');
  for (const bad of [
    'spiffe://cluster.local', 'spiffe://cluster.local/ns/shop', 'spiffe://cluster.local/ns/shop/sa/web/x', 'spiffe://cluster.local/ns/shop/sa/web/',
    'spiffe://cluster.local/namespace/shop/sa/web', 'spiffe://cluster.local/ns/shop/serviceaccount/web', 'spiffe:///ns/shop/sa/web',
    'spiffe://cluster.local/ns//sa/web', 'spiffe://cluster.local/ns/shop/sa/', 'https://cluster.local/ns/shop/sa/web', '',
  ]) {
    t.equal(parseWorkloadSpiffeId(bad), undefined, bad);
  }
});

t.test('a peer namespace is read from any principal with a /ns/<ns>/ segment', async (t) => {
  t.equal(namespaceOfPrincipal('spiffe://td/ns/a-b/sa/c'), 'a-b');
  t.equal(namespaceOfPrincipal('spiffe://other.mesh/region/eu/ns/pay/sa/api'), 'pay');
  t.equal(namespaceOfPrincipal('spiffe://td/other'), undefined);
});

t.test('trust domains the mesh accepts, and IDs re-rooted in each', async (t) => {
  const mesh = { trustDomain: 'example.org', trustDomainAliases: ['old.org', 'example.org'] } as unknown as MeshSettings;
  t.strictSame(trustDomainsForValidation(mesh), ['example.org', 'old.org']);
  t.strictSame(expandWithTrustDomains(['spiffe://example.org/ns/a/sa/b', 'spiffe://example.org'], mesh), [
    'spiffe://example.org/ns/a/sa/b', 'spiffe://old.org/ns/a/sa/b', 'spiffe://example.org',
  ]);
});
