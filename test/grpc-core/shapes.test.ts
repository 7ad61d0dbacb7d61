import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildGrpcBootstrap, defaultXdsSocket, xdsServerUri } from '../../src/agent/grpc-bootstrap.js';
import { expectAlive, expectNoNacks } from '../proxyless/helpers/calls.js';
import { CLIENT_NS, freePort, SERVER_NS, startProxylessMesh, TARGET } from '../proxyless/helpers/mesh.js';
import { startCoreClient, startCoreServer, stopAtTeardown, type CallOutcome } from './helpers/core.js';
import { expectAllAcked, shortType } from './helpers/csds.js';

/**
 * The shapes meshd's gRPC generators produce beyond one single-port service, each judged by
 * C-core (python3-grpcio 1.51): a server bound to the unspecified address, a two-port service
 * whose endpoints differ in locality, weight, identity and port-level mTLS, a mesh-external
 * service with static endpoints (also called by its bare host), and a service with no endpoints.
 * Only greeter has a live server: the other calls fail to connect, and what matters is that the
 * client ACKs every listener, route, cluster and endpoint set it was sent for them. The server's
 * bootstrap carries every field `meshd grpc-bootstrap --config-dir` fills (locality, labels,
 * service account, trust domain, instance IP), which C-core reads into its node.
 */
const MULTI = `multi.${SERVER_NS}.svc.cluster.local`;
const EMPTY = `empty.${CLIENT_NS}.svc.cluster.local`;
const SHAPES = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: multi, namespace: ${SERVER_NS} }
spec:
  hosts: [${MULTI}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - { number: 8080, name: grpc-a, protocol: GRPC }
  - { number: 8081, name: grpc-b, protocol: GRPC }
  workloadSelector: { labels: { app: multi } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: multi-1, namespace: ${SERVER_NS} }
spec: { address: 127.0.0.2, serviceAccount: greeter, labels: { app: multi }, locality: eu/zone-a/rack-1, weight: 3, ports: { grpc-a: 9000 } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: multi-2, namespace: ${SERVER_NS} }
spec: { address: 127.0.0.3, serviceAccount: other, labels: { app: multi }, locality: us/zone-b }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: multi, namespace: ${SERVER_NS} }
spec: { selector: { matchLabels: { app: multi } }, mtls: { mode: STRICT }, portLevelMtls: { 9000: { mode: DISABLE } } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: ${CLIENT_NS} }
spec:
  hosts: [ext.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 443, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.9 }, { address: 127.0.0.10, locality: a/b, weight: 2 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: empty, namespace: ${CLIENT_NS} }
spec:
  hosts: [${EMPTY}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7000, name: grpc, protocol: GRPC }]
  workloadSelector: { labels: { app: nothing } }
`;

t.test('C-core ACKs every shape: unspecified listen address, several ports, localities and weights, external and empty services', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'greeter-1', port }] });
  const keep = stopAtTeardown(t, () => mesh.close());
  await mesh.writeConfig('shapes.yaml', SHAPES);
  const serverBootstrap = join(mesh.dir, 'bootstrap-full.json');
  await writeFile(serverBootstrap, JSON.stringify(buildGrpcBootstrap({
    xdsServerUri: xdsServerUri(defaultXdsSocket(mesh.certDirs.server)),
    nodeId: `sidecar~127.0.0.1~greeter-1.${SERVER_NS}~${SERVER_NS}.svc.cluster.local`,
    namespace: SERVER_NS, workload: 'greeter-1', serviceAccount: 'greeter', trustDomain: 'cluster.local',
    locality: { region: 'eu', zone: 'zone-a', sub_zone: 'rack-1' }, labels: { app: 'greeter', version: 'v1' }, instanceIp: '127.0.0.1',
    certDir: mesh.certDirs.server, refreshIntervalSeconds: 10,
  })));
  // Started side by side: each takes a moment to load gRPC.
  const [server, client] = await Promise.all([
    keep(startCoreServer({ bootstrap: serverBootstrap, address: '0.0.0.0', port, name: 'greeter-1' })),
    keep(startCoreClient({ bootstrap: await mesh.bootstrap('client', 'caller') })),
  ]);
  expectAllAcked(t, await server.serving(), 'server bound to 0.0.0.0', ['LDS']);
  t.equal(server.listenerName, `xds.istio.io/grpc/lds/inbound/0.0.0.0:${port}`, 'it asked for the listener of the address it bound');
  const ok = await client.callUntil({ target: TARGET }, (r: CallOutcome) => r.ok, 10_000, 'a call to the server on 0.0.0.0');
  t.match(ok, { ok: true, result: { transport: 'ssl' } }, 'the server on 0.0.0.0 serves mTLS');

  const targets = [`${MULTI}:8080`, `${MULTI}:8081`, 'ext.example.com:443', 'ext.example.com', `${EMPTY}:7000`];
  for (const target of targets) await client.call({ target: `xds:///${target}`, timeoutMs: 1000 });
  const held = await client.waitAllAcked({ timeoutMs: 10_000, types: ['LDS', 'RDS', 'CDS', 'EDS'], until: (rs) => rs.length >= 21 }); // 6 listeners, 5 routes, clusters and endpoint sets
  expectAllAcked(t, held, 'C-core client', ['LDS', 'RDS', 'CDS', 'EDS']);
  const names = held.map((r) => `${shortType(r.typeUrl)} ${r.name}`).sort();
  const routes = ['greeter.grpc-server.svc.cluster.local:7070', `${MULTI}:8080`, `${MULTI}:8081`, 'ext.example.com:443', `${EMPTY}:7000`];
  const clusters = ['outbound|7070||greeter.grpc-server.svc.cluster.local', `outbound|8080||${MULTI}`, `outbound|8081||${MULTI}`, 'outbound|443||ext.example.com', `outbound|7000||${EMPTY}`];
  t.same(names, [
    ...clusters.map((c) => `CDS ${c}`), ...clusters.map((c) => `EDS ${c}`),
    ...[...routes, 'ext.example.com'].map((l) => `LDS ${l}`), ...routes.map((r) => `RDS ${r}`),
  ].sort(), 'each target\'s listener (the bare host too), route, cluster and endpoints, nothing else');

  expectAlive(t, server);
  expectAlive(t, client);
  await expectNoNacks(t, mesh, 'C-core');
});
