import t from 'tap';
import { GrpcProcess } from '../proxyless/helpers/child.js';
import { expectAlive, expectNoNacks, sleep } from '../proxyless/helpers/calls.js';
import { CLIENT_NS, freePort, startProxylessMesh, TARGET, type Mode } from '../proxyless/helpers/mesh.js';
import { startCoreClient, startCoreServer, stopAtTeardown } from './helpers/core.js';
import { expectAllAcked } from './helpers/csds.js';

/**
 * The two gRPC xDS implementations side by side behind one meshd: a C-core server and a
 * grpc-js-xds server back the same service, and a C-core client and a grpc-js-xds client each
 * call it (round robin reaches both), so every pairing is exercised: C-core → C-core,
 * C-core → grpc-js, grpc-js → C-core, grpc-js → grpc-js. Both implementations ACK everything
 * (C-core by its CSDS, grpc-js-xds by meshd's NACK view).
 */
const CALLER = `spiffe://cluster.local/ns/${CLIENT_NS}/sa/caller`;
const SERVERS = ['core-1', 'js-1'];
const CLIENT_TYPES = ['LDS', 'RDS', 'CDS', 'EDS'];

interface Outcome { ok?: boolean; result?: unknown; code?: unknown; details?: unknown }
interface Seen { server: string; transport: string; peer: string }

/** Calls until every server in SERVERS answered over `transport`; what each answered. */
async function reachEach(call: () => Promise<Outcome>, transport: string, timeoutMs: number, what: string): Promise<Map<string, Seen>> {
  const seen = new Map<string, Seen>();
  const deadline = Date.now() + timeoutMs;
  let last: Outcome | undefined;
  while (Date.now() < deadline) {
    last = await call();
    const r = last.result as Seen | undefined;
    if (last.ok === true && r !== undefined && r.transport === transport) seen.set(r.server, r);
    if (SERVERS.every((s) => seen.has(s))) return seen;
    await sleep(20);
  }
  throw new Error(`${what}: reached ${[...seen.keys()].join(', ') || 'nothing'} over ${transport} within ${timeoutMs} ms; last outcome ${JSON.stringify(last)}`);
}

t.test('C-core and grpc-js-xds clients each call a C-core and a grpc-js-xds server, under STRICT and DISABLE, everything ACKED', async (t) => {
  const [corePort, jsPort] = [await freePort(), await freePort()];
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'core-1', port: corePort }, { name: 'js-1', port: jsPort }] });
  const keep = stopAtTeardown(t, () => mesh.close());
  // All four start side by side: each takes a moment to load its gRPC.
  const jsServer = await keep(new GrpcProcess('js-1', 'greeter-server.mjs', [String(jsPort), 'js-1'], await mesh.bootstrap('server', 'js-1')));
  const jsClient = await keep(new GrpcProcess('js-client', 'greeter-client.mjs', [], await mesh.bootstrap('client', 'caller', 1, 'js')));
  const [coreServer, coreClient] = await Promise.all([
    keep(startCoreServer({ bootstrap: await mesh.bootstrap('server', 'core-1'), port: corePort, name: 'core-1' })),
    keep(startCoreClient({ bootstrap: await mesh.bootstrap('client', 'caller', 1, 'core') })),
  ]);
  await coreServer.serving();
  await jsServer.waitFor((l) => l.event === 'bound', 15_000, 'XdsServer serving');
  await jsClient.waitFor((l) => l.event === 'ready', 15_000, 'client process');

  const clients = {
    'C-core': () => coreClient.call({ target: TARGET, timeoutMs: 2000 }) as Promise<Outcome>,
    'grpc-js-xds': () => jsClient.request({ op: 'call', target: TARGET, deadlineMs: 2000 }),
  };
  const check = async (mode: Mode, transport: 'ssl' | 'insecure'): Promise<void> => {
    for (const [name, call] of Object.entries(clients)) {
      const seen = await reachEach(call, transport, 15_000, `${mode}: ${name} client`);
      for (const server of SERVERS) {
        const peer = transport === 'ssl' ? CALLER : '';
        t.match(seen.get(server), { transport, peer }, `${mode}: ${name} client → ${server}: ${transport === 'ssl' ? 'mTLS, the server saw the caller\'s SPIFFE ID' : 'plaintext'}`);
      }
    }
    expectAllAcked(t, await coreServer.waitAllAcked({ timeoutMs: 5000 }), `${mode}: C-core server`, ['LDS']);
    expectAllAcked(t, await coreClient.waitAllAcked({ timeoutMs: 5000, types: CLIENT_TYPES }), `${mode}: C-core client`, CLIENT_TYPES);
  };

  await check('STRICT', 'ssl');
  await mesh.setPolicy('DISABLE');
  await check('DISABLE', 'insecure');

  for (const p of [coreServer, jsServer, coreClient, jsClient]) expectAlive(t, p);
  await expectNoNacks(t, mesh, 'C-core or grpc-js-xds');
});
