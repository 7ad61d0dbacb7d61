import t from 'tap';
import { GrpcProcess } from './helpers/child.js';
import { callUntil, expectAlive, expectNoNacks, type CallResult } from './helpers/calls.js';
import { CLIENT_NS, freePort, startProxylessMesh, TARGET } from './helpers/mesh.js';

/**
 * Proxyless gRPC against meshd with the real @grpc/grpc-js-xds: an XdsServer in grpc-server and
 * an xds:/// client in grpc-client, each its own process with its own bootstrap, certificates
 * kept by `meshd agent`, xDS through the agents' local proxies.
 */
const CALLER = `spiffe://cluster.local/ns/${CLIENT_NS}/sa/caller`;

t.test('STRICT: mTLS with the client\'s SPIFFE ID; insecure refused; STRICT ↔ DISABLE live with no failed call, no crash, no NACK', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'greeter-1', port }] });
  const server = new GrpcProcess('server', 'greeter-server.mjs', [String(port), 'greeter-1'], await mesh.bootstrap('server', 'greeter-1'));
  const client = new GrpcProcess('client', 'greeter-client.mjs', [], await mesh.bootstrap('client', 'caller'));
  t.teardown(async () => {
    await client.stop();
    await server.stop();
    await mesh.close();
  });
  // Deadlines for outcomes, generous for a loaded machine (Node processes start here).
  await server.waitFor((l) => l.event === 'bound', 60_000, 'XdsServer serving');
  await client.waitFor((l) => l.event === 'ready', 60_000, 'client process');

  const first = await callUntil(client, { target: TARGET }, (l) => l.ok === true, 10_000, 'first mTLS call');
  t.match(first.result, { server: 'greeter-1', transport: 'ssl', peer: CALLER }, 'over TLS, and the server saw the client\'s SPIFFE ID');

  const insecure = await client.request({ op: 'call', target: `127.0.0.1:${port}`, creds: 'insecure', deadlineMs: 2000 });
  t.equal(insecure.ok, false, `a plaintext client is refused under STRICT (${String(insecure.code)}: ${String(insecure.details)})`);

  // Switch several times while calls run back to back and a slow call is in flight at each switch.
  // `steady` waits for ready, as a robust client does; `eager` fails fast. The server and its
  // clients get their updates in the same push but on different streams, a few ms apart, and
  // gRPC has no PERMISSIVE: a call that starts a new connection inside that gap can only wait
  // (steady) or fail (eager).
  await client.request({ op: 'loop-start', loop: 'steady', target: TARGET, intervalMs: 10, waitForReady: true });
  await client.request({ op: 'loop-start', loop: 'eager', target: TARGET, intervalMs: 10 });
  const switches: Array<{ to: string; followMs: number }> = [];
  for (let i = 0; i < 3; i++) {
    for (const [mode, transport] of [['DISABLE', 'insecure'], ['STRICT', 'ssl']] as const) {
      const slowBefore = server.lines.filter((l) => l.event === 'slow-call').length;
      const inFlight = client.request({ op: 'call', target: TARGET, method: 'Slow', delayMs: 600, deadlineMs: 5000 });
      await server.waitFor((l) => l.event === 'slow-call' && server.lines.filter((x) => x.event === 'slow-call').length > slowBefore, 10_000, 'the slow call in flight');
      const started = Date.now();
      await mesh.setPolicy(mode);
      await callUntil(client, { target: TARGET }, (l) => l.ok === true && (l.result as CallResult).transport === transport, 10_000, `calls over ${transport} after ${mode}`);
      switches.push({ to: mode, followMs: Date.now() - started });
      const slow = await inFlight;
      t.equal(slow.ok, true, `switch ${i + 1} to ${mode}: the call in flight completed (${slow.ok ? 'ok' : `${String(slow.code)} ${String(slow.details)}`})`);
    }
  }
  const steady = (await client.request({ op: 'loop-stop', loop: 'steady' })).result as { calls: number; failures: number; errors: string[]; transports: Record<string, number> };
  const eager = (await client.request({ op: 'loop-stop', loop: 'eager' })).result as { calls: number; failures: number; errors: string[] };
  t.comment(`fail-fast calls during the switches: ${eager.failures} of ${eager.calls} failed${eager.errors.length ? ` (${eager.errors[0]!.slice(0, 160)})` : ''}`);
  t.equal(steady.failures, 0, `${steady.calls} back-to-back calls across 6 switches, none failed${steady.errors.length ? `: ${steady.errors.join(' | ')}` : ''}`);
  t.ok((steady.transports.ssl ?? 0) > 0 && (steady.transports.insecure ?? 0) > 0, `calls went over both (${JSON.stringify(steady.transports)})`);
  t.comment(`calls followed each switch after (ms, including meshd's config debounce): ${switches.map((s) => `${s.to} ${s.followMs}`).join(', ')}`);

  const after = await client.request({ op: 'call', target: TARGET });
  t.match(after.result, { server: 'greeter-1', transport: 'ssl', peer: CALLER }, 'back on mTLS at the end');

  // PERMISSIVE: gRPC cannot accept both, so plaintext (Istio's mapping) ...
  await mesh.setPolicy('PERMISSIVE');
  await callUntil(client, { target: TARGET }, (l) => l.ok === true && (l.result as CallResult).transport === 'insecure', 10_000, 'PERMISSIVE served as plaintext');
  const plain = await callUntil(client, { target: `127.0.0.1:${port}`, creds: 'insecure' }, (l) => l.ok === true, 10_000, 'a plaintext client under PERMISSIVE');
  t.equal((plain.result as CallResult).transport, 'insecure', 'PERMISSIVE without the tlsMode label: plaintext, and a non-mesh client gets in');
  // ... unless the workload is labelled security.istio.io/tlsMode=istio: then mTLS.
  await mesh.setServers([{ name: 'greeter-1', port, labels: { 'security.istio.io/tlsMode': 'istio' } }]);
  const labelled = await callUntil(client, { target: TARGET }, (l) => l.ok === true && (l.result as CallResult).transport === 'ssl', 10_000, 'PERMISSIVE + tlsMode=istio served as mTLS');
  t.match(labelled.result, { transport: 'ssl', peer: CALLER }, 'PERMISSIVE with security.istio.io/tlsMode=istio: mTLS');
  expectAlive(t, server);
  expectAlive(t, client);
  await expectNoNacks(t, mesh);
});
