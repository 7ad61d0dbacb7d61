import t from 'tap';
import { GrpcProcess } from '../proxyless/helpers/child.js';
import { callUntil, expectAlive } from '../proxyless/helpers/calls.js';
import { freePort, startProxylessMesh, TARGET, type ProxylessMesh } from '../proxyless/helpers/mesh.js';
import { until } from '../helpers/until.js';

/**
 * grpc-js-xds workloads behind the agent's xDS proxy while meshd goes away and comes back
 * (closed and started again on the same port, data dir and config). Outcomes are polled with
 * deadlines; nothing waits a fixed time.
 */
// Four Node processes and meshd started twice: minutes on a loaded machine.
t.setTimeout(300_000);


async function metric(mesh: ProxylessMesh, name: string): Promise<number> {
  const text = await mesh.agents.client.registry.metrics();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

t.test('grpc-js-xds behind the agent: with meshd gone, a new channel in a running client and a restarted client still call; after meshd is back the client follows a config change', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'greeter-1', port }] });
  const processes: GrpcProcess[] = [];
  t.teardown(async () => {
    for (const p of processes) await p.stop();
    await mesh.close();
  });
  const server = new GrpcProcess('server', 'greeter-server.mjs', [String(port), 'greeter-1'], await mesh.bootstrap('server', 'greeter-1', 1));
  processes.push(server);
  const clientBootstrap = await mesh.bootstrap('client', 'caller', 1);
  const client = new GrpcProcess('client', 'greeter-client.mjs', [], clientBootstrap);
  processes.push(client);
  await server.waitFor((l) => l.event === 'bound', 60_000, 'XdsServer serving');
  await client.waitFor((l) => l.event === 'ready', 60_000, 'client');
  await callUntil(client, { target: TARGET }, (l) => l.ok === true, 30_000, 'first call');

  await mesh.stopMeshd();
  await until(async () => (await metric(mesh, 'meshd_agent_xds_streams_without_meshd')) >= 1 || undefined, 10_000, 'the agent noticing meshd is gone');
  const fresh = await client.request({ op: 'call', target: TARGET, fresh: true, deadlineMs: 5000 });
  t.match(fresh, { ok: true, result: { server: 'greeter-1', transport: 'ssl' } }, `a new channel with meshd gone: ${JSON.stringify(fresh)}`);

  // The client process restarts while meshd is still gone: its whole config comes from the agent.
  await client.stop();
  const again = new GrpcProcess('client-restarted', 'greeter-client.mjs', [], clientBootstrap);
  processes.push(again);
  await again.waitFor((l) => l.event === 'ready', 60_000, 'restarted client');
  const first = await again.request({ op: 'call', target: TARGET, deadlineMs: 10_000 });
  t.match(first, { ok: true, result: { server: 'greeter-1', transport: 'ssl' } }, `a restarted client with meshd gone: ${JSON.stringify(first)}`);
  t.ok(await metric(mesh, 'meshd_agent_xds_cached_responses_total') >= 4, 'LDS, RDS, CDS and EDS came from the agent');

  await mesh.startMeshd();
  await until(async () => (await metric(mesh, 'meshd_agent_xds_streams_without_meshd')) === 0 || undefined, 15_000, 'the agent reconnecting to meshd');
  // A second server appears: the restarted client reaches it only through meshd's new endpoints.
  const port2 = await freePort();
  const server2 = new GrpcProcess('server-2', 'greeter-server.mjs', [String(port2), 'greeter-2'], await mesh.bootstrap('server', 'greeter-2', 1));
  processes.push(server2);
  await mesh.setServers([{ name: 'greeter-1', port }, { name: 'greeter-2', port: port2 }]);
  await server2.waitFor((l) => l.event === 'bound', 60_000, 'second XdsServer serving');
  const reached = await callUntil(again, { target: TARGET, fresh: true }, (l) => l.ok === true && (l.result as { server?: string }).server === 'greeter-2', 30_000, 'a call to the new server');
  t.match(reached, { ok: true, result: { server: 'greeter-2', transport: 'ssl' } }, 'after meshd came back, the client follows its changes');
  expectAlive(t, server);
  expectAlive(t, again);
});

