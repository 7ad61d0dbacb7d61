import t from 'tap';
import { expectAlive, expectNoNacks } from '../proxyless/helpers/calls.js';
import { freePort, startProxylessMesh, TARGET } from '../proxyless/helpers/mesh.js';
import { ALLOW_ANYONE_HELLO, ALLOW_CALLER_HELLO, AUDIT_ALL, DENY_CLIENT_NS } from '../proxyless/helpers/authz-policies.js';
import { startCoreClient, startCoreServer, stopAtTeardown, type CallOutcome } from './helpers/core.js';
import { expectAllAcked } from './helpers/csds.js';

/**
 * AuthorizationPolicy through gRPC C-core's xDS server (python3-grpcio 1.51), the stricter second
 * implementation: every server listener carrying RBAC filters is ACKED in its own CSDS view, and
 * its RPC outcomes match the policy, as with grpc-js-xds (test/proxyless/authorization.test.ts).
 */
const allowed = (r: CallOutcome): boolean => r.ok;
const denied = (r: CallOutcome): boolean => !r.ok && r.code === 'PERMISSION_DENIED';

t.test('C-core server enforces AuthorizationPolicy: outcomes match the policy and every listener is ACKED', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'greeter-1', port }] });
  const keep = stopAtTeardown(t, () => mesh.close());
  const [server, client] = await Promise.all([
    keep(startCoreServer({ bootstrap: await mesh.bootstrap('server', 'greeter-1'), port, name: 'greeter-1', env: { GRPC_XDS_EXPERIMENTAL_RBAC: 'true' } })),
    keep(startCoreClient({ bootstrap: await mesh.bootstrap('client', 'caller') })),
  ]);
  await server.serving();
  await client.callUntil({ target: TARGET }, allowed, 10_000, 'a call before any policy');

  const step = async (what: string, method: 'Hello' | 'Slow', accept: (r: CallOutcome) => boolean): Promise<void> => {
    const r = await client.callUntil({ target: TARGET, method, fresh: true }, accept, 10_000, what);
    t.pass(`${what}: ${r.ok ? 'OK' : `${r.code} ${r.details}`}`);
  };
  const acked = async (what: string): Promise<void> => {
    expectAllAcked(t, await server.waitAllAcked({ timeoutMs: 5000, types: ['LDS'] }), `${what}, C-core server`, ['LDS']);
  };

  await mesh.writeConfig('authz.yaml', ALLOW_CALLER_HELLO);
  await step('ALLOW caller on Hello: Hello allowed', 'Hello', allowed);
  await step('ALLOW caller on Hello: Slow denied', 'Slow', denied);
  await acked('ALLOW');

  await mesh.writeConfig('authz.yaml', [ALLOW_CALLER_HELLO, DENY_CLIENT_NS].join('---\n'));
  await step('DENY grpc-client on */Hello beats the ALLOW', 'Hello', denied);
  await acked('DENY + ALLOW');

  await mesh.writeConfig('authz.yaml', [ALLOW_CALLER_HELLO, AUDIT_ALL].join('---\n'));
  await step('AUDIT next to the ALLOW: Hello allowed', 'Hello', allowed);
  await step('and Slow denied', 'Slow', denied);
  await acked('AUDIT + ALLOW');

  await mesh.setPolicy('PERMISSIVE');
  await step('PERMISSIVE (plaintext): the principal rule matches nobody', 'Hello', denied);
  await mesh.writeConfig('authz.yaml', ALLOW_ANYONE_HELLO);
  await step('PERMISSIVE with an ALLOW on the path only: Hello allowed', 'Hello', allowed);
  await step('and Slow denied', 'Slow', denied);
  await acked('PERMISSIVE + ALLOW');

  expectAlive(t, server);
  expectAlive(t, client);
  await expectNoNacks(t, mesh, 'C-core');
});
