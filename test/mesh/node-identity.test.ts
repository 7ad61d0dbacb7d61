import t from 'tap';
import { formatNodeId, nodeClaims, nodeWorkloadRef, parseNodeId, sidecarNodeId } from '../../src/mesh/node-identity.js';
import type { WorkloadEntry } from '../../src/config/model.js';

const workload = (name: string, namespace: string, address: string): WorkloadEntry => ({
  kind: 'WorkloadEntry',
  meta: { name, namespace, labels: {}, annotations: {}, source: { file: 'x.yaml', line: 1 } },
  spec: { address, ports: {}, labels: {}, serviceAccount: 'sa' },
});

t.test('node ids round-trip in Istio form: <type>~<ip>~<workload>.<ns>~<ns>.svc.<domain>', async (t) => {
  const rows: Array<[string, string, string, string]> = [
    ['api-1', 'payments', '10.0.0.7', 'sidecar~10.0.0.7~api-1.payments~payments.svc.cluster.local'],
    ['web.v2', 'shop', '2001:db8::1', 'sidecar~2001:db8::1~web.v2.shop~shop.svc.cluster.local'],
    ['dotted.name', 'pay', '10.0.0.3', 'sidecar~10.0.0.3~dotted.name.pay~pay.svc.cluster.local'],
  ];
  for (const [name, ns, ip, id] of rows) {
    t.equal(sidecarNodeId(workload(name, ns, ip)), id);
    t.strictSame(parseNodeId(id), { type: 'sidecar', ip, name, namespace: ns, dnsDomain: 'cluster.local' }, id);
  }
  const router = 'router~10.0.0.5~gw-7f9.istio-system~istio-system.svc.cluster.local';
  t.strictSame(parseNodeId(router), { type: 'router', ip: '10.0.0.5', name: 'gw-7f9', namespace: 'istio-system', dnsDomain: 'cluster.local' });
  t.equal(formatNodeId(parseNodeId(router)!), router);
  t.equal(sidecarNodeId(workload('a', 'b', '10.0.0.1'), 'corp.example'), 'sidecar~10.0.0.1~a.b~b.svc.corp.example');
});

t.test('ids every parser refused before are refused', async (t) => {
  for (const bad of [
    'envoy-1', 'api-1', 'a~b', '~~~', 'sidecar~1.2.3.4~api', 'sidecar~~x~y',
    'sidecar~1.2.3.4~api.payments~shop.svc.cluster.local', 'sidecar~10.0.0.1~api-1.other~pay.svc.cluster.local',
  ]) {
    t.equal(parseNodeId(bad), undefined, bad);
  }
});

/**
 * Ids on which the three parsers meshd had disagreed (xDS admission's, telemetry's, the bootstrap's):
 * the one parser takes the strictest reading of each part, so none of them names a workload.
 */
t.test('edge rules the former parsers disagreed on: the strictest reading wins', async (t) => {
  const rows: Array<[id: string, why: string]> = [
    ['~10.0.0.1~a.b~b.svc.cluster.local', 'empty type (only telemetry refused it)'],
    ['sidecar~~a.b~b.svc.cluster.local', 'empty IP (only telemetry refused it)'],
    ['sidecar~10.0.0.1~a.b~b', 'DNS domain without .svc.<domain> (only the bootstrap parser refused it)'],
    ['sidecar~10.0.0.1~a.b~b.svc.', 'empty DNS domain (only the bootstrap parser refused it)'],
    ['sidecar~10.0.0.1~web~shop.svc.cluster.local', 'workload part without .<namespace> (telemetry read workload "web")'],
    ['sidecar~10.0.0.1~.shop~shop.svc.cluster.local', 'empty workload name (telemetry read workload "")'],
    ['a~b~c~d', 'no namespace anywhere (telemetry read namespace "d")'],
    ['sidecar~10.0.0.1~a.~.svc.cluster.local', 'empty namespace'],
  ];
  for (const [id, why] of rows) t.equal(parseNodeId(id), undefined, `${id}: ${why}`);
});

t.test('the workload a node names: metadata first, field by field, then the node id', async (t) => {
  const id = 'sidecar~10.0.0.1~api-1.pay~pay.svc.cluster.local';
  t.strictSame(nodeWorkloadRef({ id, metadata: { NAMESPACE: 'pay', WORKLOAD_NAME: 'api-1' } }), { namespace: 'pay', name: 'api-1' });
  t.strictSame(nodeWorkloadRef({ id, metadata: {} }), { namespace: 'pay', name: 'api-1' }, 'node id as fallback');
  t.strictSame(nodeWorkloadRef({ id: 'x', metadata: { NAMESPACE: 'pay', WORKLOAD_NAME: 'api-2' } }), { namespace: 'pay', name: 'api-2' }, 'metadata alone');
  t.strictSame(nodeWorkloadRef({ id, metadata: { WORKLOAD_NAME: 'api-2' } }), { namespace: 'pay', name: 'api-2' }, 'name from metadata, namespace from the id');
  t.strictSame(nodeWorkloadRef({ id, metadata: { NAMESPACE: 'shop' } }), { namespace: 'shop', name: 'api-1' }, 'namespace from metadata, name from the id');
  t.equal(nodeWorkloadRef({ id: 'x', metadata: {} }), undefined);
  t.equal(nodeWorkloadRef({ id: 'x', metadata: { NAMESPACE: 'pay' } }), undefined, 'NAMESPACE alone names no workload');
  t.equal(nodeWorkloadRef({ id: 'x', metadata: { WORKLOAD_NAME: 'api-1' } }), undefined, 'WORKLOAD_NAME alone names no workload');
  t.equal(nodeWorkloadRef({ id: 'x', metadata: { NAMESPACE: '', WORKLOAD_NAME: 7 } }), undefined, 'only non-empty strings count');
});

t.test('what a node claims, for admission and telemetry', async (t) => {
  const id = 'sidecar~10.0.0.1~api-1.pay~pay.svc.cluster.local';
  t.strictSame(nodeClaims({ id, metadata: { NAMESPACE: 'pay', WORKLOAD_NAME: 'api-1', INSTANCE_IPS: '10.9.9.9', LABELS: { app: 'api', n: 1 }, CLUSTER_ID: 'east' } }), {
    labels: { app: 'api' },
    nodeId: { type: 'sidecar', ip: '10.0.0.1', name: 'api-1', namespace: 'pay', dnsDomain: 'cluster.local' },
    namespace: 'pay',
    workloadName: 'api-1',
    workload: { namespace: 'pay', name: 'api-1', namedBy: 'node metadata NAMESPACE/WORKLOAD_NAME' },
    ip: '10.0.0.1',
    clusterId: 'east',
  });
  t.match(nodeClaims({ id, metadata: {} }), { namespace: 'pay', workload: { namedBy: 'node id' }, ip: '10.0.0.1' });
  t.match(nodeClaims({ id, metadata: { WORKLOAD_NAME: 'api-2' } }), { workload: { name: 'api-2', namedBy: 'node metadata and node id' } });
  const bare = nodeClaims({ id: 'my-envoy', metadata: { WORKLOAD_NAME: 'api-1', INSTANCE_IPS: '10.0.0.4,10.0.0.5' } });
  t.strictSame(bare, { labels: {}, workloadName: 'api-1', ip: '10.0.0.4' }, 'no namespace: no workload; the IP from INSTANCE_IPS');
});
