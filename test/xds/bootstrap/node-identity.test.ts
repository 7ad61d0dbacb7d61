import t from 'tap';
import { localityOf, parseSidecarNodeId, sidecarNodeId } from '../../../src/xds/bootstrap/node-identity.js';
import { parseEndpointAddress } from '../../../src/xds/bootstrap/endpoint-address.js';
import type { WorkloadEntry } from '../../../src/config/model.js';

const workload = (name: string, namespace: string, address: string): WorkloadEntry => ({
  kind: 'WorkloadEntry',
  meta: { name, namespace, labels: {}, annotations: {}, source: { file: 'x.yaml', line: 1 } },
  spec: { address, ports: {}, labels: {}, serviceAccount: 'sa' },
});

t.test('node ids round-trip in Istio form', async (t) => {
  const rows: Array<[string, string, string, string]> = [
    ['api-1', 'payments', '10.0.0.7', 'sidecar~10.0.0.7~api-1.payments~payments.svc.cluster.local'],
    ['web.v2', 'shop', '2001:db8::1', 'sidecar~2001:db8::1~web.v2.shop~shop.svc.cluster.local'],
  ];
  for (const [name, ns, ip, id] of rows) {
    t.equal(sidecarNodeId(workload(name, ns, ip)), id);
    t.same(parseSidecarNodeId(id), { type: 'sidecar', ip, workload: name, namespace: ns, dnsDomain: 'cluster.local' }, id);
  }
  for (const bad of ['sidecar~1.2.3.4~api', 'sidecar~1.2.3.4~api~payments.svc.cluster.local', 'sidecar~1.2.3.4~api.payments~shop.svc.cluster.local', 'router~1~a.b~b.svc.']) {
    t.equal(parseSidecarNodeId(bad), undefined, bad);
  }
});

t.test('Istio locality strings become Envoy localities', async (t) => {
  t.same(localityOf('eu/eu-1/rack-3'), { region: 'eu', zone: 'eu-1', sub_zone: 'rack-3' });
  t.same(localityOf('eu'), { region: 'eu' });
  t.equal(localityOf(''), undefined);
  t.equal(localityOf(undefined), undefined);
});

t.test('meshd addresses: IPs are STATIC, names STRICT_DNS, anything else is refused', async (t) => {
  t.same(parseEndpointAddress('127.0.0.1:15012'), { host: '127.0.0.1', port: 15012, isIp: true });
  t.same(parseEndpointAddress('[::1]:15012'), { host: '::1', port: 15012, isIp: true });
  t.same(parseEndpointAddress('meshd.istio-system.svc:15012'), { host: 'meshd.istio-system.svc', port: 15012, isIp: false });
  const bad: Array<[string, RegExp]> = [
    ['meshd', /must be HOST:PORT/],
    ['::1:15012', /must be HOST:PORT/],
    ['meshd:0', /port must be 1-65535/],
    ['under_score:15012', /is neither an IP address nor a DNS name/],
  ];
  for (const [text, re] of bad) t.throws(() => parseEndpointAddress(text), re, text);
});
