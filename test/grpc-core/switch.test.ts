import t from 'tap';
import { expectAlive, expectNoNacks, sleep } from '../proxyless/helpers/calls.js';
import { freePort, SERVICE_HOST, SERVICE_PORT, startProxylessMesh, TARGET, type Mode } from '../proxyless/helpers/mesh.js';
import { startCoreClient, startCoreServer, stopAtTeardown, type CallOutcome, type LoopResult } from './helpers/core.js';
import { expectAllAcked, findResource, type XdsResourceStatus } from './helpers/csds.js';

/**
 * PeerAuthentication switches STRICT → PERMISSIVE → STRICT (mTLS ↔ plaintext for gRPC) while a
 * C-core client calls a C-core server back to back: wait-for-ready and fail-fast on a kept
 * channel, fail-fast on a fresh channel per call. Asserted: after every switch both processes
 * ACK the new resources, calls go over the new transport, and the call in flight at the switch
 * completes. Failed calls during the switches are counted and printed, not asserted: meshd
 * pushes the server's listener and the client's cluster together, on two streams, and gRPC has
 * no PERMISSIVE, so a call that opens a connection between the two arrivals fails fast.
 */
const CLUSTER = `outbound|${SERVICE_PORT}||${SERVICE_HOST}`;
const CLIENT_TYPES = ['LDS', 'RDS', 'CDS', 'EDS'];
const SWITCHES: ReadonlyArray<[Mode, 'ssl' | 'insecure']> = [
  ['PERMISSIVE', 'insecure'], ['STRICT', 'ssl'],
  ['PERMISSIVE', 'insecure'], ['STRICT', 'ssl'],
  ['PERMISSIVE', 'insecure'], ['STRICT', 'ssl'],
];

const over = (transport: string) => (r: CallOutcome): boolean => r.ok && r.result.transport === transport;
const versionOf = (rs: readonly XdsResourceStatus[], type: string, name: string): string | undefined => findResource(rs, type, name)?.version;

function summary(name: string, r: LoopResult): string {
  return `${name}: ${r.failures} of ${r.calls} failed ${JSON.stringify(r.transports)}${r.errors.length ? `; first: ${r.errors.slice(0, 3).join(' | ')}` : ''}`;
}

t.test('STRICT ↔ PERMISSIVE switches under load: C-core ACKs every update, calls follow, in-flight calls complete', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'greeter-1', port }] });
  const keep = stopAtTeardown(t, () => mesh.close());
  // Started side by side: each takes a moment to load gRPC.
  const [server, client] = await Promise.all([
    keep(startCoreServer({ bootstrap: await mesh.bootstrap('server', 'greeter-1'), port, name: 'greeter-1' })),
    keep(startCoreClient({ bootstrap: await mesh.bootstrap('client', 'caller') })),
  ]);
  await server.serving();
  await client.callUntil({ target: TARGET }, over('ssl'), 10_000, 'first mTLS call');
  let serverState = await server.waitAllAcked({ timeoutMs: 5000, types: ['LDS'] });
  let clientState = await client.waitAllAcked({ timeoutMs: 5000, types: CLIENT_TYPES });

  await client.loopStart('wait-for-ready', { target: TARGET, intervalMs: 10, waitForReady: true, timeoutMs: 5000 });
  await client.loopStart('fail-fast', { target: TARGET, intervalMs: 10, timeoutMs: 5000 });
  await client.loopStart('fail-fast, fresh channel', { target: TARGET, intervalMs: 10, fresh: true, timeoutMs: 5000 });
  await sleep(200);

  const timings: string[] = [];
  for (const [i, [mode, transport]] of SWITCHES.entries()) {
    const inFlight = client.call({ target: TARGET, method: 'Slow', delayMs: 600, timeoutMs: 5000 });
    await sleep(100);
    const [lds, cds] = [versionOf(serverState, 'LDS', server.listenerName), versionOf(clientState, 'CDS', CLUSTER)];
    const started = Date.now();
    await mesh.setPolicy(mode);
    serverState = await server.waitAllAcked({ timeoutMs: 10_000, what: `switch ${i + 1} to ${mode}: C-core server ACKs its new listener`, until: (rs) => versionOf(rs, 'LDS', server.listenerName) !== lds });
    clientState = await client.waitAllAcked({ timeoutMs: 10_000, types: CLIENT_TYPES, what: `switch ${i + 1} to ${mode}: C-core client ACKs its new cluster`, until: (rs) => versionOf(rs, 'CDS', CLUSTER) !== cds });
    expectAllAcked(t, serverState, `switch ${i + 1} to ${mode}: C-core server`, ['LDS']);
    expectAllAcked(t, clientState, `switch ${i + 1} to ${mode}: C-core client`, CLIENT_TYPES);
    await client.callUntil({ target: TARGET }, over(transport), 10_000, `switch ${i + 1}: calls over ${transport} after ${mode}`);
    const followMs = Date.now() - started;
    const slow = await inFlight;
    t.equal(slow.ok, true, `switch ${i + 1} to ${mode}: the call in flight completed (${slow.ok ? 'ok' : `${slow.code}: ${slow.details}`})`);
    // Who accepted first, by the processes' own CSDS timestamps (one machine, one clock).
    const serverAt = findResource(serverState, 'LDS', server.listenerName)?.updatedAtMs ?? 0;
    const clientAt = findResource(clientState, 'CDS', CLUSTER)?.updatedAtMs ?? 0;
    timings.push(`${mode}: calls over ${transport} after ${followMs} ms; client cluster ${clientAt >= serverAt ? `${clientAt - serverAt} ms after` : `${serverAt - clientAt} ms before`} the server listener`);
  }
  await sleep(200);

  const results: Array<[string, LoopResult]> = [];
  for (const loop of ['wait-for-ready', 'fail-fast', 'fail-fast, fresh channel']) results.push([loop, await client.loopStop(loop)]);
  t.comment(`${SWITCHES.length} switches (including meshd's config debounce): ${timings.join('; ')}`);
  for (const [name, r] of results) {
    t.comment(summary(name, r));
    t.ok((r.transports.ssl ?? 0) > 0 && (r.transports.insecure ?? 0) > 0, `${name}: calls went over both mTLS and plaintext (${r.calls} calls)`);
  }
  t.match(await client.call({ target: TARGET }), { ok: true, result: { transport: 'ssl' } }, 'back on mTLS at the end');
  expectAlive(t, server);
  expectAlive(t, client);
  await expectNoNacks(t, mesh, 'C-core');
});
