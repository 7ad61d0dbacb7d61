/**
 * `meshd serve` as its own process against large config files: one over the size bound is
 * refused while everything in force keeps being served; one within the bounds is parsed on a
 * worker thread, so meshd answers and honours SIGTERM during the parse.
 */
import t, { type Test } from 'tap';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { XdsTestClient } from '../xds/helpers/xds-client.js';
import { runMeshd, startServeProcess, type ServeProcess } from './helpers/serve-process.js';

interface DebugConfig {
  counts: { peerAuthentications: number; serviceEntries: number; workloadEntries: number };
  messages: { level: string; message: string; source: { file: string; line: number } }[];
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function serveExampleConfig(t: Test): Promise<{ serve: ServeProcess; configDir: string; dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'meshd-bounds-data-'));
  const configDir = await mkdtemp(join(tmpdir(), 'meshd-bounds-config-'));
  await cp('examples/config', configDir, { recursive: true });
  const serve = await startServeProcess(['--config-dir', configDir, '--data-dir', dataDir, '--shutdown-grace', '1s']);
  t.teardown(async () => {
    if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    await rm(configDir, { recursive: true, force: true });
  });
  return { serve, configDir, dataDir };
}

t.test('a file over the size bound: an error naming it and the bound, the config in force kept and served', async (t) => {
  const { serve, configDir, dataDir } = await serveExampleConfig(t);
  const debug = async (): Promise<DebugConfig> => (await fetch(`http://127.0.0.1:${serve.ports.monitoring}/debug/config`)).json() as Promise<DebugConfig>;
  const before = await debug();
  // payments.yaml, its PeerAuthentication flipped to DISABLE, padded past 1 MiB with a comment.
  const payments = join(configDir, 'payments.yaml');
  await writeFile(payments, (await readFile(payments, 'utf8')).replace('mode: STRICT', 'mode: DISABLE') + `# ${'x'.repeat(1_100_000)}\n`);
  const after = await until('the refusal on /debug/config', async () => {
    const d = await debug();
    return d.messages.some((m) => m.source.file === payments) ? d : undefined;
  });
  t.same(after.counts, before.counts, 'every object stays in force');
  t.match(after.messages.find((m) => m.level === 'error')?.message, /^file is 1,10\d,\d{3} bytes \(1\.1 MiB\); meshd reads config files of at most 1,048,576 bytes \(1 MiB\)$/);

  const token = (await runMeshd(['token', 'issue', '-n', 'payments', '-s', 'payments-api', '--data-dir', dataDir])).stdout.trim();
  const client = new XdsTestClient(`127.0.0.1:${serve.ports.grpc}`);
  t.teardown(() => client.close());
  const ads = client.sotw('ads', {
    node: { id: 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local', metadata: { NAMESPACE: 'payments', WORKLOAD_NAME: 'api-1' } },
    metadata: { authorization: `Bearer ${token}` },
  });
  ads.subscribe(TypeUrl.Listener, []);
  const listeners = await ads.next(10_000);
  t.ok(listeners.resources.length > 0, 'a sidecar still gets its listeners');
  const exit = await serve.terminate();
  t.equal(exit.code, 0);
});

t.test('a large file within the bounds is parsed on a worker: meshd answers and honours SIGTERM meanwhile', async (t) => {
  const { serve, configDir } = await serveExampleConfig(t);
  // 66,000 keys in one map: ~198,000 tokens, just within the bound. The yaml package's own
  // duplicate-key check took minutes on such a map, on the event loop.
  const keys = Array.from({ length: 66_000 }, (_, i) => `    k${i}: v\n`).join('');
  await writeFile(join(configDir, 'big.yaml'), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  annotations:\n${keys}`);
  await until('the parse on a worker thread', async () => (serve.logs.some((l) => l.msg === 'parsing config on a worker thread') ? true : undefined));
  const ready = await fetch(`http://127.0.0.1:${serve.ports.monitoring}/ready`);
  t.equal(ready.status, 200, 'the monitoring port answers during the parse');
  t.comment(`the reload ${serve.logs.some((l) => l.msg === 'mesh config messages changed' || l.msg === 'mesh config changed') ? 'had finished' : 'was still parsing'} when SIGTERM was sent`);
  const exit = await Promise.race([
    serve.terminate(),
    new Promise<{ code: null; ms: number }>((resolve) => setTimeout(() => resolve({ code: null, ms: -1 }), 15_000).unref()),
  ]);
  t.equal(exit.code, 0, 'exits cleanly within 15 s of SIGTERM');
});
