import t from 'tap';
import { GrpcProcess } from './helpers/child.js';
import { callUntil, expectAlive, expectNoNacks } from './helpers/calls.js';
import { freePort, startProxylessMesh, TARGET } from './helpers/mesh.js';
import { ALLOW_ANYONE_HELLO, ALLOW_CALLER_HELLO, AUDIT_ALL, DENY_CLIENT_NS } from './helpers/authz-policies.js';

/**
 * AuthorizationPolicy enforced by a real @grpc/grpc-js-xds XdsServer (gRFC A41): the RBAC HTTP
 * filters meshd puts in its server listener deny what the policy denies with
 * PERMISSION_DENIED, let through what it allows, and are never NACKed, including when an
 * AUDIT policy (which gRPC cannot take) applies too.
 */
const PERMISSION_DENIED = 7;

t.test('grpc-js-xds enforces AuthorizationPolicy: allowed calls succeed, denied ones get PERMISSION_DENIED, nothing is NACKed', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'greeter-1', port }] });
  // grpc-js-xds 1.14 takes the RBAC filter only with this set.
  const server = new GrpcProcess('server', 'greeter-server.mjs', [String(port), 'greeter-1'], await mesh.bootstrap('server', 'greeter-1'), { GRPC_XDS_EXPERIMENTAL_RBAC: 'true' });
  const client = new GrpcProcess('client', 'greeter-client.mjs', [], await mesh.bootstrap('client', 'caller'));
  t.teardown(async () => {
    await client.stop();
    await server.stop();
    await mesh.close();
  });
  await server.waitFor((l) => l.event === 'bound', 60_000, 'XdsServer serving');
  await client.waitFor((l) => l.event === 'ready', 60_000, 'client process');
  await callUntil(client, { target: TARGET }, (l) => l.ok === true, 10_000, 'a call before any policy');
  await callUntil(client, { target: TARGET, method: 'Slow', delayMs: 1 }, (l) => l.ok === true, 10_000, 'Slow before any policy');

  const ok = (method: string) => ({ cmd: { target: TARGET, method, delayMs: 1 }, accept: (l: { ok?: unknown }) => l.ok === true });
  const denied = (method: string) => ({
    cmd: { target: TARGET, method, delayMs: 1 },
    accept: (l: { ok?: unknown; code?: unknown }) => l.ok === false && l.code === PERMISSION_DENIED,
  });
  const expect = async (what: string, e: { cmd: Record<string, unknown>; accept: (l: Record<string, unknown>) => boolean }): Promise<void> => {
    const got = await callUntil(client, e.cmd, e.accept as never, 10_000, what);
    t.pass(`${what}: ${got.ok === true ? 'OK' : `${String(got.code)} ${String(got.details)}`}`);
  };

  await mesh.writeConfig('authz.yaml', ALLOW_CALLER_HELLO);
  await expect('ALLOW caller on Hello: Hello allowed', ok('Hello'));
  await expect('ALLOW caller on Hello: Slow denied (no ALLOW rule matches)', denied('Slow'));
  const detail = await client.request({ op: 'call', target: TARGET, method: 'Slow', delayMs: 1 });
  t.match(detail, { ok: false, code: PERMISSION_DENIED, details: /Unauthorized RPC rejected/ }, 'the denial is gRPC\'s RBAC rejection');

  await mesh.writeConfig('authz.yaml', [ALLOW_CALLER_HELLO, DENY_CLIENT_NS].join('---\n'));
  await expect('DENY grpc-client on */Hello beats the ALLOW: Hello denied', denied('Hello'));

  await mesh.writeConfig('authz.yaml', [ALLOW_CALLER_HELLO, AUDIT_ALL].join('---\n'));
  await expect('AUDIT next to the ALLOW (left out for gRPC): Hello allowed again', ok('Hello'));
  await expect('and Slow still denied', denied('Slow'));

  // PERMISSIVE is served as plaintext to gRPC: no peer certificate, so no principal matches.
  await mesh.setPolicy('PERMISSIVE');
  await expect('PERMISSIVE (plaintext): the principal rule matches nobody, Hello denied', denied('Hello'));
  await mesh.writeConfig('authz.yaml', ALLOW_ANYONE_HELLO);
  await expect('PERMISSIVE with an ALLOW on the path only: Hello allowed', ok('Hello'));
  await expect('and Slow denied', denied('Slow'));

  await mesh.writeConfig('authz.yaml', '');
  await mesh.setPolicy('STRICT');
  await expect('no policy: Slow allowed again', ok('Slow'));
  expectAlive(t, server);
  expectAlive(t, client);
  await expectNoNacks(t, mesh);
});
