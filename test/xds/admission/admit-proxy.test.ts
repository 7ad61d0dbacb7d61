import t from 'tap';
import { status } from '@grpc/grpc-js';
import { admitProxy } from '../../../src/xds/admission/admit-proxy.js';
import { GeneratorError, type ProxyInfo } from '../../../src/xds/core/types.js';
import { docs, identity, proxyFor, se, snapshotOf, we } from '../generators/fixtures.js';

const snap = snapshotOf(docs(
  se('pay', 'api', { ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], selector: { app: 'api' } }),
  we('pay', 'api-1', { address: '10.0.0.1', labels: { app: 'api' }, serviceAccount: 'payments-api' }),
  we('pay', 'no-sa', { address: '10.0.0.2', labels: { app: 'api' } }),
  we('pay', 'dotted.name', { address: '10.0.0.3', labels: { app: 'api' }, serviceAccount: 'x' }),
  we('pay', 'api-2', { address: '10.0.0.4', labels: { app: 'api' }, serviceAccount: 'payments-api' }),
), 'trustDomain: example.org\ntrustDomainAliases: [old.org]\n');
const admit = admitProxy(() => snap);

const rows: Array<{ name: string; proxy: ProxyInfo; refused?: RegExp }> = [
  { name: 'the workload\'s own service account is admitted', proxy: proxyFor('pay', 'api-1', identity('pay', 'payments-api', 'example.org')) },
  { name: 'an alias trust domain is admitted', proxy: proxyFor('pay', 'api-1', identity('pay', 'payments-api', 'old.org')) },
  { name: 'an entry without serviceAccount runs as default', proxy: proxyFor('pay', 'no-sa', identity('pay', 'default', 'example.org')) },
  {
    name: 'another service account is refused',
    proxy: proxyFor('pay', 'api-1', identity('pay', 'intruder', 'example.org')),
    refused: /^proxy "sidecar~10\.0\.0\.1~api-1\.pay~pay\.svc\.cluster\.local" proved spiffe:\/\/example\.org\/ns\/pay\/sa\/intruder \(namespace pay, service account intruder\), but it names WorkloadEntry pay\/api-1, which runs as spiffe:\/\/example\.org\/ns\/pay\/sa\/payments-api$/,
  },
  {
    name: 'the same service account name in another namespace is refused',
    proxy: proxyFor('pay', 'api-1', identity('shop', 'payments-api', 'example.org')),
    refused: /proved spiffe:\/\/example\.org\/ns\/shop\/sa\/payments-api \(namespace shop, service account payments-api\), but it names WorkloadEntry pay\/api-1, which runs as/,
  },
  {
    name: 'a foreign trust domain is refused',
    proxy: proxyFor('pay', 'api-1', identity('pay', 'payments-api', 'evil.org')),
    refused: /trust domain evil\.org is not the mesh's \(example\.org, old\.org\)/,
  },
  {
    name: 'a WorkloadEntry that does not exist is refused, saying where it was named',
    proxy: proxyFor('pay', 'api-9', identity('pay', 'payments-api', 'example.org')),
    refused: /names WorkloadEntry pay\/api-9 \(by node metadata NAMESPACE\/WORKLOAD_NAME\), which does not exist in the mesh config$/,
  },
  {
    name: 'a WorkloadEntry named only by the node id that does not exist is refused',
    proxy: { ...proxyFor('pay', 'api-9', identity('pay', 'payments-api', 'example.org')), metadata: {} },
    refused: /^proxy "sidecar~10\.0\.0\.1~api-9\.pay~pay\.svc\.cluster\.local" names WorkloadEntry pay\/api-9 \(by node id\), which does not exist in the mesh config$/,
  },
  {
    name: 'a node id naming another identity\'s WorkloadEntry is refused although the metadata names the proxy\'s own',
    proxy: { ...proxyFor('pay', 'no-sa', identity('pay', 'default', 'example.org')), id: 'sidecar~10.0.0.1~api-1.pay~pay.svc.cluster.local' },
    refused: /^proxy "sidecar~10\.0\.0\.1~api-1\.pay~pay\.svc\.cluster\.local" proved spiffe:\/\/example\.org\/ns\/pay\/sa\/default \(namespace pay, service account default\), but its node id names WorkloadEntry pay\/api-1, which runs as spiffe:\/\/example\.org\/ns\/pay\/sa\/payments-api$/,
  },
  {
    name: 'a node id naming a workload that does not exist is fine when the metadata names the own one (Istio VMs put the host name there)',
    proxy: { ...proxyFor('pay', 'api-1', identity('pay', 'payments-api', 'example.org')), id: 'sidecar~10.0.0.1~vm-host-7.pay~pay.svc.cluster.local' },
  },
  {
    name: 'a node id naming a WorkloadEntry of the same identity is fine beside metadata naming another of it',
    proxy: { ...proxyFor('pay', 'api-2', identity('pay', 'payments-api', 'example.org')), id: 'sidecar~10.0.0.1~api-1.pay~pay.svc.cluster.local' },
  },
  {
    name: 'a proxy naming no workload is admitted (identity-only: its secrets, no mesh config)',
    proxy: { ...proxyFor('pay', 'api-1', identity('pay', 'payments-api', 'example.org')), id: 'my-envoy', metadata: {} },
  },
  {
    name: 'NAMESPACE alone names no workload',
    proxy: { ...proxyFor('pay', 'api-1', identity('pay', 'payments-api', 'example.org')), id: 'my-envoy', metadata: { NAMESPACE: 'pay' } },
  },
  {
    name: 'WORKLOAD_NAME without any namespace is refused, not served as identity-only',
    proxy: { ...proxyFor('pay', 'api-1', identity('pay', 'payments-api', 'example.org')), id: 'my-envoy', metadata: { WORKLOAD_NAME: 'api-1' } },
    refused: /^proxy "my-envoy" names workload "api-1" in node metadata WORKLOAD_NAME but no namespace: set node metadata NAMESPACE/,
  },
];

for (const row of rows) {
  t.test(`admission: ${row.name}`, async (t) => {
    if (row.refused === undefined) {
      await t.resolves(async () => admit(row.proxy));
      return;
    }
    try {
      await admit(row.proxy);
      t.fail('admitted');
    } catch (err) {
      t.type(err, GeneratorError);
      t.equal((err as GeneratorError).code, status.PERMISSION_DENIED);
      t.match((err as Error).message, row.refused);
    }
  });
}
