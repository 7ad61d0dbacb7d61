/** The watcher on a real temp dir: real fs.watch events, real debounce, real logger output. */
import t from 'tap';
import { mkdtemp, rm, writeFile, unlink, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/common/logger.js';
import { watchConfigDir, type ConfigWatcher } from '../../src/config/watcher.js';
import type { SnapshotDiff } from '../../src/config/diff.js';
import type { MeshSnapshot } from '../../src/config/model.js';
import { pa, yaml } from './helpers.js';

interface Change { snapshot: MeshSnapshot; diff: SnapshotDiff }

async function setup(t: { teardown: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-watch-'));
  const logStream = new PassThrough();
  const logLines: Record<string, unknown>[] = [];
  logStream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const changes: Change[] = [];
  let waiter: (() => void) | undefined;
  await writeFile(join(dir, 'shop.yaml'), pa('shop', 'default', 'PERMISSIVE'));
  const watcher: ConfigWatcher = await watchConfigDir({
    dir,
    logger: createLogger({ level: 'info', destination: logStream }),
    debounceMs: 50,
    onChange: (snapshot, diff) => {
      changes.push({ snapshot, diff });
      waiter?.();
    },
  });
  /** Resolve with the n-th change (1-based), failing after 10 s. */
  const nthChange = (n: number): Promise<Change> => new Promise((resolve, reject) => {
    const timeout = setTimeout(() => reject(new Error(`no change #${n} within 10s (got ${changes.length})`)), 10_000);
    const check = (): void => {
      if (changes.length >= n) {
        clearTimeout(timeout);
        waiter = undefined;
        resolve(changes[n - 1]!);
      }
    };
    waiter = check;
    check();
  });
  t.teardown(async () => {
    await watcher.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, watcher, changes, nthChange, logLines };
}

t.test('initial load, then a new file yields a new snapshot with a diff naming it', async (t) => {
  const { dir, watcher, nthChange } = await setup(t);
  t.equal(watcher.current.version, 1);
  t.equal(watcher.current.peerAuthentications[0]?.mode, 'PERMISSIVE');
  t.same([...watcher.initialDiff().namespaces], ['shop']);

  await writeFile(join(dir, 'pay.yaml'), pa('pay', 'default', 'STRICT'));
  const c = await nthChange(1);
  t.equal(c.snapshot.version, 2);
  t.equal(watcher.current, c.snapshot);
  t.same([...c.diff.peerAuthenticationNamespaces], ['pay']);
  t.same(c.snapshot.peerAuthentications.map((p) => `${p.meta.namespace}:${p.mode}`), ['pay:STRICT', 'shop:PERMISSIVE']);
});

t.test('an invalid edit keeps the previous version and reports the error with file and line', async (t) => {
  const { dir, watcher, nthChange, logLines } = await setup(t);
  const file = join(dir, 'shop.yaml');
  await writeFile(file, pa('shop', 'default', 'STRICT'));
  const c1 = await nthChange(1);
  t.equal(c1.snapshot.peerAuthentications[0]?.mode, 'STRICT');

  await writeFile(file, pa('shop', 'default', 'SRTICT'));
  const c2 = await nthChange(2);
  t.equal(c2.diff.empty, true, 'no config change reaches the proxies');
  t.equal(c2.diff.messagesChanged, true);
  t.equal(watcher.current.peerAuthentications[0]?.mode, 'STRICT', 'the last good version stays in force');
  const err = logLines.find((l) => l.level === 50 && typeof l.msg === 'string' && l.msg.includes('SRTICT'));
  t.ok(err, 'the error is logged');
  t.equal(err?.file, file);
  t.equal(err?.line, 8);
  t.equal(err?.resource, 'PeerAuthentication/shop/default');

  await writeFile(file, pa('shop', 'default', 'DISABLE'));
  const c3 = await nthChange(3);
  t.equal(c3.snapshot.peerAuthentications[0]?.mode, 'DISABLE');
  t.same(c3.snapshot.messages, []);
});

t.test('a burst of writes is one reload with the final content; rename-into-place and delete are seen', async (t) => {
  const { dir, nthChange, changes } = await setup(t);
  const file = join(dir, 'shop.yaml');
  for (const mode of ['STRICT', 'DISABLE', 'UNSET', 'STRICT', 'DISABLE']) await writeFile(file, pa('shop', 'default', mode));
  const c1 = await nthChange(1);
  t.equal(c1.snapshot.peerAuthentications[0]?.mode, 'DISABLE');

  // Atomic replace, as editors and config-sync tools do it.
  await writeFile(join(dir, '.tmp-new'), yaml`
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: web-1, namespace: shop}
    spec: {address: 10.0.0.1}
  `);
  await rename(join(dir, '.tmp-new'), join(dir, 'we.yaml'));
  const c2 = await nthChange(2);
  t.same([...c2.diff.workloads], ['shop/web-1']);
  t.equal(changes.length, 2, 'the burst produced exactly one change');

  await unlink(join(dir, 'we.yaml'));
  const c3 = await nthChange(3);
  t.same(c3.snapshot.workloadEntries, []);
  t.same([...c3.diff.workloads], ['shop/web-1']);
});

t.test('stop() ends watching: later writes publish nothing', async (t) => {
  const { dir, watcher, changes } = await setup(t);
  await watcher.stop();
  await writeFile(join(dir, 'pay.yaml'), pa('pay', 'default', 'STRICT'));
  await new Promise((r) => setTimeout(r, 300));
  t.equal(changes.length, 0);
  t.equal(watcher.current.version, 1);
});
