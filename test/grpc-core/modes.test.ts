import t from 'tap';
import { expectAlive, expectNoNacks } from '../proxyless/helpers/calls.js';
import { CLIENT_NS, freePort, SERVICE_HOST, SERVICE_PORT, startProxylessMesh, TARGET } from '../proxyless/helpers/mesh.js';
import { startCoreClient, startCoreServer, stopAtTeardown, type CallOutcome } from './helpers/core.js';
import { expectAllAcked, findResource } from './helpers/csds.js';

/**
 * gRPC C-core's xDS server and client (python3-grpcio 1.51) behind `meshd agent`s, as
 * test/proxyless/strict-mtls.test.ts runs grpc-js-xds: in each PeerAuthentication mode every
 * resource meshd sent both processes is ACKED (their own CSDS view, not meshd's), and the calls
 * come out as the mode says.
 */
const CALLER = `spiffe://cluster.local/ns/${CLIENT_NS}/sa/caller`;
const CLUSTER = `outbound|${SERVICE_PORT}||${SERVICE_HOST}`;
const CLIENT_TYPES = ['LDS', 'RDS', 'CDS', 'EDS'];

const over = (transport: 'ssl' | 'insecure') => (r: CallOutcome): boolean => r.ok && r.result.transport === transport;

t.test('C-core server and client through meshd: all ACKED, and STRICT, PERMISSIVE, PERMISSIVE+tlsMode and DISABLE behave as the mode says', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'greeter-1', port }] });
  const keep = stopAtTeardown(t, () => mesh.close());
  // Started side by side: each takes a moment to load gRPC.
  const [server, client] = await Promise.all([
    keep(startCoreServer({ bootstrap: await mesh.bootstrap('server', 'greeter-1'), port, name: 'greeter-1' })),
    keep(startCoreClient({ bootstrap: await mesh.bootstrap('client', 'caller') })),
  ]);
  await server.serving();
  // A new channel per check: a refused channel backs off (1 s, growing), which would measure gRPC's backoff, not the mode.
  const plaintextClient = { target: `127.0.0.1:${port}`, creds: 'insecure' as const, timeoutMs: 2000, fresh: true };

  // STRICT: mTLS, the server sees the caller's SPIFFE ID; a plaintext client is refused.
  const first = await client.callUntil({ target: TARGET }, over('ssl'), 10_000, 'first mTLS call');
  t.match(first, { ok: true, result: { server: 'greeter-1', transport: 'ssl', peer: CALLER } }, 'STRICT: mTLS, and the server saw the client\'s SPIFFE ID');
  t.match(await client.call({ target: TARGET, fresh: true }), { ok: true, result: { transport: 'ssl' } }, 'STRICT: a fresh channel handshakes mTLS too');
  t.match(await client.call({ target: TARGET, waitForReady: true }), { ok: true, result: { transport: 'ssl' } }, 'STRICT: a wait-for-ready call');
  const refused = await client.call(plaintextClient);
  t.equal(refused.ok, false, `STRICT: a plaintext client is refused (${refused.ok ? 'it got in' : `${refused.code}: ${refused.details}`})`);
  const strictServer = await server.waitAllAcked({ timeoutMs: 5000, types: ['LDS'] });
  expectAllAcked(t, strictServer, 'STRICT, C-core server', ['LDS']);
  const strictClient = await client.waitAllAcked({ timeoutMs: 5000, types: CLIENT_TYPES });
  expectAllAcked(t, strictClient, 'STRICT, C-core client', CLIENT_TYPES);
  t.same(strictClient.map((r) => r.name).sort(), [CLUSTER, CLUSTER, `${SERVICE_HOST}:${SERVICE_PORT}`, `${SERVICE_HOST}:${SERVICE_PORT}`].sort(),
    'the client holds exactly its target\'s listener, route, cluster and endpoints');

  // PERMISSIVE: plaintext (gRPC cannot accept both); a non-mesh client gets in.
  await mesh.setPolicy('PERMISSIVE');
  const serverLds = findResource(strictServer, 'LDS', server.listenerName)!.version;
  const clientCds = findResource(strictClient, 'CDS', CLUSTER)!.version;
  const permissiveServer = await server.waitAllAcked({ timeoutMs: 10_000, until: (rs) => findResource(rs, 'LDS', server.listenerName)?.version !== serverLds });
  expectAllAcked(t, permissiveServer, 'PERMISSIVE, C-core server (plaintext listener)', ['LDS']);
  const permissiveClient = await client.waitAllAcked({ timeoutMs: 10_000, types: CLIENT_TYPES, until: (rs) => findResource(rs, 'CDS', CLUSTER)?.version !== clientCds });
  expectAllAcked(t, permissiveClient, 'PERMISSIVE, C-core client (plaintext cluster)', CLIENT_TYPES);
  const plain = await client.callUntil({ target: TARGET }, over('insecure'), 10_000, 'PERMISSIVE served as plaintext');
  t.match(plain, { ok: true, result: { server: 'greeter-1', transport: 'insecure', peer: '' } }, 'PERMISSIVE: the mesh client calls in plaintext');
  const outsider = await client.callUntil(plaintextClient, (r) => r.ok, 10_000, 'a plaintext client under PERMISSIVE');
  t.match(outsider, { ok: true, result: { transport: 'insecure' } }, 'PERMISSIVE: a non-mesh plaintext client gets in');

  // PERMISSIVE on a workload labelled security.istio.io/tlsMode=istio: mTLS again.
  await mesh.setServers([{ name: 'greeter-1', port, labels: { 'security.istio.io/tlsMode': 'istio' } }]);
  const labelled = await client.callUntil({ target: TARGET }, over('ssl'), 10_000, 'PERMISSIVE + tlsMode=istio served as mTLS');
  t.match(labelled, { ok: true, result: { transport: 'ssl', peer: CALLER } }, 'PERMISSIVE with security.istio.io/tlsMode=istio: mTLS');
  expectAllAcked(t, await server.waitAllAcked({ timeoutMs: 5000 }), 'PERMISSIVE+tlsMode, C-core server', ['LDS']);
  expectAllAcked(t, await client.waitAllAcked({ timeoutMs: 5000, types: CLIENT_TYPES }), 'PERMISSIVE+tlsMode, C-core client', CLIENT_TYPES);
  const refusedAgain = await client.callUntil(plaintextClient, (r) => !r.ok, 10_000, 'plaintext refused under PERMISSIVE+tlsMode');
  t.equal(refusedAgain.ok, false, 'PERMISSIVE+tlsMode: a plaintext client is refused');

  // DISABLE: plaintext, even for the labelled workload.
  await mesh.setPolicy('DISABLE');
  const disabled = await client.callUntil({ target: TARGET }, over('insecure'), 10_000, 'DISABLE served as plaintext');
  t.match(disabled, { ok: true, result: { transport: 'insecure', peer: '' } }, 'DISABLE: plaintext');
  t.match(await client.callUntil(plaintextClient, (r) => r.ok, 10_000, 'a plaintext client under DISABLE'), { ok: true }, 'DISABLE: a non-mesh client gets in');
  expectAllAcked(t, await server.waitAllAcked({ timeoutMs: 5000 }), 'DISABLE, C-core server', ['LDS']);
  expectAllAcked(t, await client.waitAllAcked({ timeoutMs: 5000, types: CLIENT_TYPES }), 'DISABLE, C-core client', CLIENT_TYPES);

  expectAlive(t, server);
  expectAlive(t, client);
  await expectNoNacks(t, mesh, 'C-core');
});
