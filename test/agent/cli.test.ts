import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startTestMeshd } from '../e2e/helpers/meshd.js';
import { meshdCommand } from '../helpers/meshd-cli.js';

/**
 * The two commands as a user runs them: `meshd grpc-bootstrap` prints a bootstrap grpc-js-xds's
 * own validator accepts; `meshd agent` runs as its own process, keeps the files and exits
 * cleanly on SIGTERM.
 */
const require = createRequire(import.meta.url);
const cli = (args: string[]) => spawnSync(...meshdCommand(args), { encoding: 'utf8', env: { ...process.env, MESHD_LOG_LEVEL: 'warn' } });

const CONFIG = `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: greeter-1
  namespace: grpc-server
spec:
  address: 10.1.2.3
  serviceAccount: greeter
  locality: eu-west/zone-b
  labels:
    app: greeter
  ports:
    grpc: 50051
`;

t.test('meshd grpc-bootstrap: what grpc-js-xds validates, pointing at the agent', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-grpcboot-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'we.yaml'), CONFIG);
  const r = cli(['grpc-bootstrap', '-n', 'grpc-server', '-w', 'greeter-1', '--certs', join(dir, 'certs'), '--config-dir', dir]);
  t.equal(r.status, 0, r.stderr);
  const bootstrap = JSON.parse(r.stdout);
  const validate = (require('@grpc/grpc-js-xds/build/src/xds-bootstrap.js') as { validateBootstrapConfig(o: unknown): unknown }).validateBootstrapConfig;
  t.doesNotThrow(() => validate(bootstrap), 'grpc-js-xds validates it');
  t.same(bootstrap.xds_servers, [{ server_uri: `unix://${join(dir, 'certs', 'xds.sock')}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    'the agent\'s local xDS socket, insecure channel (the agent adds the credentials)');
  t.equal(bootstrap.node.id, 'sidecar~10.1.2.3~greeter-1.grpc-server~grpc-server.svc.cluster.local');
  t.same(bootstrap.node.locality, { region: 'eu-west', zone: 'zone-b' });
  t.match(bootstrap.node.metadata, { GENERATOR: 'grpc', NAMESPACE: 'grpc-server', WORKLOAD_NAME: 'greeter-1', SERVICE_ACCOUNT: 'greeter' });
  t.equal(bootstrap.server_listener_resource_name_template, 'xds.istio.io/grpc/lds/inbound/%s');
  t.same(bootstrap.certificate_providers.default, {
    plugin_name: 'file_watcher',
    config: {
      certificate_file: join(dir, 'certs', 'cert-chain.pem'),
      private_key_file: join(dir, 'certs', 'key.pem'),
      ca_certificate_file: join(dir, 'certs', 'root-cert.pem'),
      refresh_interval: '10s',
    },
  }, 'file_watcher on the agent\'s files, refresh_interval as a string');

  const missing = cli(['grpc-bootstrap', '-n', 'grpc-server', '-w', 'nope', '--certs', dir, '--config-dir', dir]);
  t.not(missing.status, 0);
  t.match(missing.stderr, /no WorkloadEntry grpc-server\/nope/);
});

t.test('meshd agent as a process: writes the set, serves the xDS and SDS sockets (SDS by default, where bootstrap --agent looks), exits 0 on SIGTERM leaving the files', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const dir = await mkdtemp(join(tmpdir(), 'meshd-agentcli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'root.pem'), meshd.rootsPem());
  await writeFile(join(dir, 'token'), await meshd.token('shop', 'web'));
  const out = join(dir, 'out');
  const child = spawn(...meshdCommand(['agent', '-n', 'shop', '-s', 'web', '--token-file', join(dir, 'token'), '--out', out,
    '--xds-address', `127.0.0.1:${meshd.ports.secureGrpc}`, '--ca-root', join(dir, 'root.pem'), '--ttl', '1h', '--log-level', 'warn']), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (await stat(join(out, 'xds.sock')).then(() => true, () => false) && await stat(join(out, 'sds.sock')).then(() => true, () => false)
      && await readlink(join(out, '..data')).then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const leaf = new X509Certificate(await readFile(join(out, 'cert-chain.pem')));
  t.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/web');
  t.ok((await stat(join(out, 'xds.sock'))).isSocket(), 'the xDS socket is there');
  const sds = await stat(join(out, 'sds.sock'));
  t.ok(sds.isSocket(), 'the SDS socket is there without --sds-socket: <out>/sds.sock');
  t.equal(sds.mode & 0o777, 0o600, 'and only its owner (the agent\'s and Envoy\'s uid) can open it');
  child.kill('SIGTERM');
  t.equal(await exited, 0, `clean exit on SIGTERM ${stderr.slice(0, 300)}`);
  await t.rejects(stat(join(out, 'xds.sock')), 'the socket is removed');
  await t.rejects(stat(join(out, 'sds.sock')), 'so is the SDS socket');
  t.equal(new X509Certificate(await readFile(join(out, 'cert-chain.pem'))).serialNumber, leaf.serialNumber, 'the certificate stays for the workload');
});
