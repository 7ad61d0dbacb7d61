import t from 'tap';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { XdsTestClient } from '../xds/helpers/xds-client.js';
import { startServeProcess, runMeshd } from './helpers/serve-process.js';
import { getTarget, HOSTILE_TARGETS, rawHttp } from '../server/helpers/raw-http.js';

/**
 * The whole `meshd serve` process against hostile HTTP on its monitoring port: request targets
 * that WHATWG's URL parser cannot parse (each of which once ended the process, taking the CA,
 * SDS/xDS, the CSR API and ALS with it), aimed at every path meshd serves, a malformed request
 * line and oversized headers. Every request gets an answer, and afterwards the process still
 * serves HTTP and gRPC.
 */

const PATHS = ['/healthz', '/ready', '/metrics', '/trust-bundle', '/debug/connections', '/debug/config', '/no-such-endpoint'];

/** Targets built around a path: each makes `new URL(target, base)` throw, or is not a URL at all. */
function hostileTargetsFor(path: string): Array<{ target: string; status: number }> {
  return [
    // Origin-form: a path beginning "//" that WHATWG reads as a host; meshd serves no such path.
    { target: `//[${path}`, status: 404 },
    { target: `//a:b:c${path}`, status: 404 },
    { target: `//%zz${path}`, status: 404 },
    // Absolute-form that is no URL: a bad request target.
    { target: `http://[${path}`, status: 400 },
    { target: `http://a:b:c${path}`, status: 400 },
    { target: `http://[::1${path}`, status: 400 },
  ];
}

t.test('hostile HTTP on every endpoint is answered, and meshd serve goes on serving HTTP and gRPC', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'meshd-hostile-http-'));
  const serve = await startServeProcess(['--config-dir', 'examples/config', '--data-dir', dataDir]);
  t.teardown(() => { if (serve.child.exitCode === null) serve.child.kill('SIGKILL'); });
  const port = serve.ports.monitoring;
  const alive = (): boolean => serve.child.exitCode === null && serve.child.signalCode === null;

  for (const target of HOSTILE_TARGETS) {
    const r = await getTarget(port, target);
    t.ok(r.status === 400 || r.status === 404, `GET ${target} → ${r.status}`);
  }
  for (const path of PATHS) {
    for (const { target, status } of hostileTargetsFor(path)) {
      const r = await getTarget(port, target);
      t.equal(r.status, status, `GET ${target} → ${status}`);
    }
    const post = await rawHttp(port, `POST //[${path} HTTP/1.1\r\nHost: meshd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    t.equal(post.status, 405, `POST //[${path} → 405`);
  }
  t.equal((await rawHttp(port, 'GET /healthz HTTP/1.1 trailing-garbage\r\n\r\n')).status, 400, 'a malformed request line → 400');
  t.equal((await rawHttp(port, 'BREW /healthz HTCPCP/1.0\r\n\r\n')).status, 400, 'not HTTP at all → 400');
  const oversized = await rawHttp(port, `GET /metrics HTTP/1.1\r\nHost: meshd\r\nx-padding: ${'p'.repeat(64 * 1024)}\r\n\r\n`);
  t.equal(oversized.status, 431, 'headers over 16 KB → 431');
  t.ok(alive(), 'the process is alive');

  // HTTP still answers on every endpoint.
  for (const path of PATHS) {
    const r = await fetch(`http://127.0.0.1:${port}${path}`);
    t.equal(r.status, path === '/no-such-endpoint' ? 404 : 200, `GET ${path} after the attack`);
  }
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /^meshd_handler_errors_total\{server="monitoring",handler="\(request\)"\} 0$/m, 'none of it was an internal error');

  // gRPC still answers: SDS on the plaintext port with a token.
  const token = (await runMeshd(['token', 'issue', '-n', 'payments', '-s', 'payments-api', '--data-dir', dataDir])).stdout.trim();
  const client = new XdsTestClient(`127.0.0.1:${serve.ports.grpc}`);
  t.teardown(() => client.close());
  const sds = client.sotw('sds', { node: { id: 'hostile-http-check' }, metadata: { authorization: `Bearer ${token}` } });
  sds.subscribe(TypeUrl.Secret, ['default', 'ROOTCA']);
  const secrets = await sds.next(15_000);
  t.same(secrets.resources.map((r) => r.name).sort(), ['ROOTCA', 'default'], 'SDS answers with the certificate and the bundle');
  sds.cancel();

  const exit = await serve.terminate();
  t.equal(exit.code, 0, 'and it exits cleanly on SIGTERM');
});
