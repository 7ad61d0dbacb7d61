import t from 'tap';
import { GrpcProcess } from './helpers/child.js';
import { callUntil, expectAlive, expectNoNacks, loopUntil } from './helpers/calls.js';
import { freePort, startProxylessMesh, TARGET, type ServerWorkload } from './helpers/mesh.js';

/**
 * Endpoints follow the WorkloadEntries: a server added to the mesh config starts receiving the
 * client's calls, one removed stops receiving them, while the client keeps its channel.
 */
interface LoopResult { calls: number; failures: number; errors: string[]; servers: Record<string, number> }

t.test('a WorkloadEntry added is called, one removed is not, with no NACK', async (t) => {
  const [p1, p2] = [await freePort(), await freePort()];
  const one: ServerWorkload = { name: 'greeter-1', port: p1 };
  const two: ServerWorkload = { name: 'greeter-2', port: p2 };
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [one] });
  const s1 = new GrpcProcess('server-1', 'greeter-server.mjs', [String(p1), 'greeter-1'], await mesh.bootstrap('server', 'greeter-1'));
  const client = new GrpcProcess('client', 'greeter-client.mjs', [], await mesh.bootstrap('client', 'caller'));
  let s2: GrpcProcess | undefined;
  t.teardown(async () => {
    await client.stop();
    await s1.stop();
    await s2?.stop();
    await mesh.close();
  });
  // Deadlines for outcomes, generous for a loaded machine (Node processes start here).
  await s1.waitFor((l) => l.event === 'bound', 60_000, 'greeter-1 serving');
  await client.waitFor((l) => l.event === 'ready', 60_000, 'client');
  await callUntil(client, { target: TARGET }, (l) => l.ok === true, 10_000, 'first call');

  // The second server's WorkloadEntry first (meshd admits a node only for an existing entry), then the process.
  await mesh.setServers([one, two]);
  s2 = new GrpcProcess('server-2', 'greeter-server.mjs', [String(p2), 'greeter-2'], await mesh.bootstrap('server', 'greeter-2'));
  await s2.waitFor((l) => l.event === 'bound', 60_000, 'greeter-2 serving');
  const reached = await callUntil(client, { target: TARGET }, (l) => l.ok === true && (l.result as { server: string }).server === 'greeter-2', 10_000, 'a call reaching greeter-2');
  t.match(reached.result, { server: 'greeter-2', transport: 'ssl' }, 'the added endpoint is called, over mTLS');
  await client.request({ op: 'loop-start', loop: 'both', target: TARGET, intervalMs: 5 });
  await loopUntil(client, 'both', (s) => s.calls >= 100, 30_000, '100 calls');
  const both = (await client.request({ op: 'loop-stop', loop: 'both' })).result as LoopResult;
  t.ok((both.servers['greeter-1'] ?? 0) > 0 && (both.servers['greeter-2'] ?? 0) > 0, `round robin over both (${JSON.stringify(both.servers)})`);
  t.equal(both.failures, 0, 'no call failed');

  await mesh.setServers([two]);
  // The client has applied the removal once calls stop alternating: round robin over two
  // endpoints never sends ten in a row to one of them.
  let inARow = 0;
  await callUntil(client, { target: TARGET }, (l) => {
    inARow = l.ok === true && (l.result as { server: string }).server === 'greeter-2' ? inARow + 1 : 0;
    return inARow >= 10;
  }, 10_000, 'ten calls in a row to greeter-2 after the removal');
  await client.request({ op: 'loop-start', loop: 'after', target: TARGET, intervalMs: 5 });
  await loopUntil(client, 'after', (s) => s.calls >= 100, 30_000, '100 calls after the removal');
  const after = (await client.request({ op: 'loop-stop', loop: 'after' })).result as LoopResult;
  t.same(Object.keys(after.servers), ['greeter-2'], `only greeter-2 after greeter-1's entry was removed (${JSON.stringify(after.servers)})`);
  t.equal(after.failures, 0, `no call failed${after.errors.length ? `: ${after.errors.join(' | ')}` : ''}`);

  expectAlive(t, s1);
  expectAlive(t, s2);
  expectAlive(t, client);
  await expectNoNacks(t, mesh);
});
