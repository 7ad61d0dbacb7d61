import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { XdsTestClient } from '../xds/helpers/xds-client.js';
import { startServeProcess, runMeshd } from './helpers/serve-process.js';

t.test('meshd serve with the example config: ready, metrics, trust bundle; SIGTERM ends streams with UNAVAILABLE and exits', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'meshd-serve-'));
  const serve = await startServeProcess(['--config-dir', 'examples/config', '--data-dir', dataDir]);
  t.teardown(() => { if (serve.child.exitCode === null) serve.child.kill('SIGKILL'); });
  const http = (path: string) => fetch(`http://127.0.0.1:${serve.ports.monitoring}${path}`);

  t.equal(await (await http('/ready')).text(), 'ready\n');
  t.equal((await http('/healthz')).status, 200);
  const metrics = await (await http('/metrics')).text();
  for (const name of ['citadel_server_root_cert_expiry_timestamp', 'pilot_xds', 'process_cpu_seconds_total', 'citadel_server_success_cert_issuance_count']) {
    t.match(metrics, new RegExp(`^${name}`, 'm'), `exposes ${name}`);
  }
  const bundle = (await (await http('/trust-bundle')).json()) as { keys: Array<{ use: string; x5c: string[] }>; spiffe_sequence: number; spiffe_refresh_hint: number };
  t.equal(bundle.keys.length, 1);
  t.equal(bundle.keys[0]!.use, 'x509-svid');
  t.ok(bundle.spiffe_sequence >= 1 && bundle.spiffe_refresh_hint > 0, 'SPIFFE bundle fields');
  const pemBundle = await (await http('/trust-bundle?format=pem')).text();
  t.match(pemBundle, /BEGIN CERTIFICATE/);
  t.equal((await http('/nope')).status, 404);

  const token = (await runMeshd(['token', 'issue', '-n', 'payments', '-s', 'payments-api', '--data-dir', dataDir])).stdout.trim();
  const client = new XdsTestClient(`127.0.0.1:${serve.ports.grpc}`);
  t.teardown(() => client.close());
  const ads = client.sotw('ads', {
    node: { id: 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local', metadata: { NAMESPACE: 'payments', WORKLOAD_NAME: 'api-1' } },
    metadata: { authorization: `Bearer ${token}` },
  });
  ads.subscribe(TypeUrl.Cluster, []);
  const clusters = await ads.next(10_000);
  t.ok(clusters.resources.some((r) => r.name === 'inbound|8080||'), 'the sidecar of payments/api-1 gets its config over ADS');
  ads.ack(clusters);

  const status = (await fetch(`http://127.0.0.1:${serve.ports.monitoring}/debug/connections`).then((r) => r.json())) as Array<{ proxyId: string; spiffeId: string }>;
  t.equal(status[0]?.spiffeId, 'spiffe://cluster.local/ns/payments/sa/payments-api');
  const table = await runMeshd(['proxy-status', '--monitoring-addr', `127.0.0.1:${serve.ports.monitoring}`]);
  t.match(table.stdout, /NAME\s+IDENTITY\s+STREAM\s+CDS\s+LDS/);
  t.match(table.stdout, /api-1\.payments.*spiffe:\/\/cluster\.local\/ns\/payments\/sa\/payments-api\s+ADS\/sotw\s+SYNCED/);

  const exit = await serve.terminate();
  t.equal(exit.code, 0, 'exits cleanly on SIGTERM');
  t.comment(`exited ${exit.ms} ms after SIGTERM`);
  const ended = await ads.status;
  t.equal(ended.code, grpc.status.UNAVAILABLE, 'open streams end with UNAVAILABLE so proxies reconnect elsewhere');
  t.notOk(serve.logs.some((l) => JSON.stringify(l).includes(token)), 'the token never reaches a log line');
});

t.test('a restart keeps the root; corrupt CA material stops start-up naming the file and is left untouched', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'meshd-serve-'));
  const first = await startServeProcess(['--data-dir', dataDir]);
  const rootBefore = await (await fetch(`http://127.0.0.1:${first.ports.monitoring}/trust-bundle?format=pem`)).text();
  await first.terminate();
  const second = await startServeProcess(['--data-dir', dataDir]);
  const rootAfter = await (await fetch(`http://127.0.0.1:${second.ports.monitoring}/trust-bundle?format=pem`)).text();
  await second.terminate();
  t.equal(rootAfter, rootBefore, 'the same root after a restart');

  const caFiles = (await readdir(join(dataDir, 'ca'), { recursive: true })).filter((f) => f.endsWith('.pem') && f.includes('key'));
  t.ok(caFiles.length > 0, `found CA key files: ${caFiles.join(', ')}`);
  const keyFile = join(dataDir, 'ca', caFiles[0]!);
  await writeFile(keyFile, 'not a key\n');
  const failed = await runMeshd(['serve', '--data-dir', dataDir, '--secure-grpc-addr', '127.0.0.1:0', '--grpc-addr', '127.0.0.1:0', '--monitoring-addr', '127.0.0.1:0']);
  t.equal(failed.code, 1, 'refuses to start');
  t.match(failed.stderr, keyFile, 'the message names the file');
  t.equal(await readFile(keyFile, 'utf8'), 'not a key\n', 'the file is left untouched');
});

t.test('meshd --help lists every command; serve --help shows defaults', async (t) => {
  const help = await runMeshd(['--help']);
  for (const cmd of ['serve', 'ca', 'token', 'validate', 'check', 'bootstrap', 'proxy-status']) t.match(help.stdout, new RegExp(`^  ${cmd}\\b`, 'm'), `lists ${cmd}`);
  const serveHelp = await runMeshd(['serve', '--help']);
  // commander wraps help lines: read each option's whole entry (up to the next option) on one line.
  const entry = (flag: string): string => {
    const start = serveHelp.stdout.indexOf(`  ${flag} `);
    const next = serveHelp.stdout.indexOf('\n  -', start + 1);
    return serveHelp.stdout.slice(start, next === -1 ? undefined : next).replace(/\s+/g, ' ');
  };
  t.match(entry('--secure-grpc-addr'), '(default: "0.0.0.0:15012")');
  t.match(entry('--grpc-addr'), '(default: "127.0.0.1:15010")');
  t.match(entry('--monitoring-addr'), '(default: "127.0.0.1:15014")');
  t.match(entry('--data-dir'), '(default: "./.meshd", env: MESHD_DATA_DIR)');
  t.match(entry('--telemetry-series-idle'), '(default: "10m")');
});
