import t from 'tap';
import { GrpcProcess } from './helpers/child.js';
import { callUntil, expectAlive, expectNoNacks } from './helpers/calls.js';
import { freePort, startProxylessMesh, TARGET } from './helpers/mesh.js';
import { policy } from './helpers/authz-policies.js';

/**
 * A DENY policy switched on and off 50 times while allowed calls flow, with the real
 * grpc-js-xds: each switch takes effect (the denied method flips), and not one allowed call
 * fails, neither the wait-for-ready nor the fail-fast ones, although every switch replaces the
 * server listener.
 */
const PERMISSION_DENIED = 7;
const SWITCHES = 50;

const ALLOW_ALL = policy('allow-all', 'ALLOW', '  - {}\n');
const DENY_SLOW = policy('deny-slow', 'DENY', `  - to:
    - operation:
        paths: ["*/Slow"]
`);

t.test(`${SWITCHES} ALLOW/DENY switches while calls flow: each takes effect, no allowed call fails, no NACK`, async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'greeter-1', port }] });
  const server = new GrpcProcess('server', 'greeter-server.mjs', [String(port), 'greeter-1'], await mesh.bootstrap('server', 'greeter-1'), { GRPC_XDS_EXPERIMENTAL_RBAC: 'true' });
  const client = new GrpcProcess('client', 'greeter-client.mjs', [], await mesh.bootstrap('client', 'caller'));
  t.teardown(async () => {
    await client.stop();
    await server.stop();
    await mesh.close();
  });
  await server.waitFor((l) => l.event === 'bound', 60_000, 'XdsServer serving');
  await client.waitFor((l) => l.event === 'ready', 60_000, 'client process');
  await mesh.writeConfig('authz.yaml', ALLOW_ALL);
  await callUntil(client, { target: TARGET }, (l) => l.ok === true, 10_000, 'calls under ALLOW');

  await client.request({ op: 'loop-start', loop: 'steady', target: TARGET, intervalMs: 10, waitForReady: true });
  await client.request({ op: 'loop-start', loop: 'eager', target: TARGET, intervalMs: 10 });
  const followMs: number[] = [];
  for (let i = 0; i < SWITCHES; i++) {
    const deny = i % 2 === 0;
    const started = Date.now();
    await mesh.writeConfig('authz.yaml', deny ? [ALLOW_ALL, DENY_SLOW].join('---\n') : ALLOW_ALL);
    await callUntil(client, { target: TARGET, method: 'Slow', delayMs: 1 },
      (l) => (deny ? l.ok === false && l.code === PERMISSION_DENIED : l.ok === true), 10_000, `switch ${i + 1} (${deny ? 'DENY' : 'ALLOW'}) in effect`);
    followMs.push(Date.now() - started);
  }
  const steady = (await client.request({ op: 'loop-stop', loop: 'steady' })).result as { calls: number; failures: number; errors: string[] };
  const eager = (await client.request({ op: 'loop-stop', loop: 'eager' })).result as { calls: number; failures: number; errors: string[] };
  t.pass(`all ${SWITCHES} switches took effect`);
  followMs.sort((a, b) => a - b);
  t.comment(`switch in effect after (ms, incl. the config write and meshd's 100 ms debounce): median ${followMs[followMs.length >> 1]}, max ${followMs[followMs.length - 1]}`);
  t.equal(steady.failures, 0, `wait-for-ready: ${steady.calls} allowed calls, none failed${steady.errors.length ? `: ${steady.errors.join(' | ')}` : ''}`);
  t.equal(eager.failures, 0, `fail-fast: ${eager.calls} allowed calls, none failed${eager.errors.length ? `: ${eager.errors.join(' | ')}` : ''}`);
  expectAlive(t, server);
  expectAlive(t, client);
  await expectNoNacks(t, mesh);
});
