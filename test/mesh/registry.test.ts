import t from 'tap';
import { loadConfigDir } from '../../src/config/load-config-dir.js';
import {
  endpointPort, findWorkloadEntry, servicesForWorkload, workloadTlsMode, workloadsForService,
} from '../../src/mesh/registry.js';
import { snapshotOf, yaml } from '../config/helpers.js';

const s = snapshotOf({
  'shop.yaml': yaml`
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: web, namespace: shop}
    spec:
      hosts: [web.shop.svc.cluster.local]
      location: MESH_INTERNAL
      resolution: STATIC
      ports:
      - {number: 80, name: http, protocol: HTTP, targetPort: 8080}
      - {number: 9090, name: metrics, protocol: HTTP}
      workloadSelector: {labels: {app: web}}
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: all-v2, namespace: shop}
    spec:
      hosts: [v2.shop.svc.cluster.local]
      resolution: STATIC
      ports: [{number: 80, name: http, protocol: HTTP}]
      workloadSelector: {labels: {version: v2}}
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: db, namespace: shop}
    spec:
      hosts: [db.shop.internal]
      resolution: STATIC
      ports: [{number: 5432, name: tcp, protocol: TCP}]
      endpoints:
      - {address: 10.9.0.1, serviceAccount: db}
      - {address: 10.9.0.2, labels: {security.istio.io/tlsMode: istio}}
    ---
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: web-1, namespace: shop}
    spec: {address: 10.0.0.1, serviceAccount: web, labels: {app: web, version: v1}, ports: {http: 18080}}
    ---
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: web-2, namespace: shop}
    spec: {address: 10.0.0.2, serviceAccount: web, labels: {app: web, version: v2}}
    ---
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: web-other-ns, namespace: other}
    spec: {address: 10.0.0.3, labels: {app: web, version: v2, security.istio.io/tlsMode: disabled}, serviceAccount: web}
  `,
});
const se = (name: string) => s.serviceEntries.find((x) => x.meta.name === name)!;

t.test('workloadsForService: WorkloadEntries selected by labels in the same namespace only', async (t) => {
  t.same(workloadsForService(s, se('web')).map((e) => e.name), ['web-1', 'web-2']);
  t.same(workloadsForService(s, se('all-v2')).map((e) => e.name), ['web-2']);
  t.equal(workloadsForService(s, se('web'))[0]?.workloadEntry?.meta.name, 'web-1');
});

t.test('workloadsForService: inline endpoints when there is no selector', async (t) => {
  const eps = workloadsForService(s, se('db'));
  t.same(eps.map((e) => [e.name, e.spec.address, e.namespace, e.workloadEntry]), [
    ['db/endpoints[0]', '10.9.0.1', 'shop', undefined],
    ['db/endpoints[1]', '10.9.0.2', 'shop', undefined],
  ]);
});

t.test('servicesForWorkload: every selecting ServiceEntry of its namespace', async (t) => {
  const we = (ns: string, n: string) => findWorkloadEntry(s, ns, n)!;
  t.same(servicesForWorkload(s, we('shop', 'web-1')).map((x) => x.meta.name), ['web']);
  t.same(servicesForWorkload(s, we('shop', 'web-2')).map((x) => x.meta.name).sort(), ['all-v2', 'web']);
  t.same(servicesForWorkload(s, we('other', 'web-other-ns')), []);
  t.equal(findWorkloadEntry(s, 'shop', 'nope'), undefined);
});

t.test('endpointPort: the endpoint\'s named port, else targetPort, else the service port', async (t) => {
  const [http, metrics] = se('web').ports;
  t.equal(endpointPort(http!, findWorkloadEntry(s, 'shop', 'web-1')!.spec), 18080);
  t.equal(endpointPort(http!, findWorkloadEntry(s, 'shop', 'web-2')!.spec), 8080);
  t.equal(endpointPort(metrics!, findWorkloadEntry(s, 'shop', 'web-2')!.spec), 9090);
});

t.test('workloadTlsMode follows Istio: label first, then service account', async (t) => {
  const [db0, db1] = se('db').endpoints;
  t.equal(workloadTlsMode(db0!), 'istio', 'service account set');
  t.equal(workloadTlsMode(db1!), 'istio', 'labelled');
  t.equal(workloadTlsMode(findWorkloadEntry(s, 'other', 'web-other-ns')!.spec), 'disabled', 'label wins over service account');
  t.equal(workloadTlsMode({ address: '1.1.1.1', ports: {}, labels: {}, serviceAccount: '' }), 'disabled');
});

t.test('the example config wires every ServiceEntry to its WorkloadEntries', async (t) => {
  const ex = await loadConfigDir('examples/config');
  const map = Object.fromEntries(ex.serviceEntries.map((x) => [`${x.meta.namespace}/${x.meta.name}`, workloadsForService(ex, x).map((e) => e.name)]));
  t.same(map, { 'legacy/cache': ['cache-1'], 'payments/api': ['api-1', 'api-2'], 'shop/web': ['web-1'] });
});
