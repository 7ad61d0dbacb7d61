/**
 * The watcher on a real temp dir: real fs.watch events, real logger output. Debounce and path
 * checks run on the real clock where the fs events' own timing is the point, and on a
 * ManualClock where the test pins down what the timers do.
 */
import t from 'tap';
import { mkdir, mkdtemp, rm, writeFile, unlink, rename, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { watch } from 'node:fs';
import { ManualClock, type Clock } from '../../src/common/clock.js';
import { createLogger } from '../../src/common/logger.js';
import { watchConfigDir, type ConfigWatcher } from '../../src/config/watcher.js';
import type { SnapshotDiff } from '../../src/config/diff.js';
import type { MeshSnapshot } from '../../src/config/model.js';
import { pa, yaml } from './helpers.js';

interface Change { snapshot: MeshSnapshot; diff: SnapshotDiff }

interface SetupOptions {
  /** Lays out the config (default: shop.yaml, PERMISSIVE); returns the path to watch (default: the temp dir). */
  prepare?: (tmp: string) => Promise<string>;
  pathCheckMs?: number;
  clock?: Clock;
}

async function setup(t: { teardown: (fn: () => Promise<void>) => void }, opts: SetupOptions = {}) {
  const tmp = await mkdtemp(join(tmpdir(), 'meshd-watch-'));
  const logStream = new PassThrough();
  const logLines: Record<string, unknown>[] = [];
  logStream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const changes: Change[] = [];
  let waiter: (() => void) | undefined;
  const dir = opts.prepare
    ? await opts.prepare(tmp)
    : (await writeFile(join(tmp, 'shop.yaml'), pa('shop', 'default', 'PERMISSIVE')), tmp);
  const watcher: ConfigWatcher = await watchConfigDir({
    dir,
    logger: createLogger({ level: 'info', destination: logStream }),
    debounceMs: 50,
    pathCheckMs: opts.pathCheckMs,
    clock: opts.clock,
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
    await rm(tmp, { recursive: true, force: true });
  });
  return { dir, tmp, watcher, changes, nthChange, logLines };
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

/**
 * A second fs.watch on the same dir, to know when the kernel's events for a write have been
 * delivered: Node's watchers of one dir share one inotify watch, so every watcher's callback for
 * an event has run by the check phase after the witness saw it.
 */
function witness(t: { teardown: (fn: () => void) => void }, dir: string): (file: string) => Promise<void> {
  const seen: string[] = [];
  const waiters: Array<() => void> = [];
  const w = watch(dir, (_event, file) => {
    if (file) seen.push(file.toString());
    for (const wake of waiters.splice(0)) wake();
  });
  t.teardown(() => w.close());
  return async (file) => {
    const deadline = Date.now() + 10_000;
    while (!seen.includes(file)) {
      if (Date.now() > deadline) throw new Error(`no fs event for ${file} within 10 s`);
      await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 100); });
    }
    await new Promise((resolve) => setImmediate(resolve));
  };
}

t.test('debounce on the clock: a reload waits for 50 ms of quiet, and at most 1 s under a steady stream of writes', async (t) => {
  const clock = new ManualClock(Date.now());
  const { dir, changes, nthChange } = await setup(t, { clock, pathCheckMs: 60_000 });
  const pathCheckAt = clock.now() + 60_000;
  const delivered = witness(t, dir);
  const file = join(dir, 'shop.yaml');
  await writeFile(file, pa('shop', 'default', 'STRICT'));
  await delivered('shop.yaml');
  t.same(clock.timerDelays(), [50, 60_000], 'a reload is armed 50 ms out');
  clock.advance(49);
  t.equal(changes.length, 0, 'not before 50 ms of quiet');
  clock.advance(1);
  t.equal((await nthChange(1)).snapshot.peerAuthentications[0]?.mode, 'STRICT', 'reloaded after 50 ms of quiet');

  // Writes every 40 ms (and a marker file the loader ignores, to know their events arrived)
  // never leave 50 ms of quiet: the reload happens 1 s after the first of them.
  const streamStart = clock.now();
  for (let i = 0; i < 25; i++) {
    await writeFile(file, pa('shop', 'default', i % 2 === 0 ? 'DISABLE' : 'PERMISSIVE'));
    await writeFile(join(dir, `marker-${i}.txt`), '');
    await delivered(`marker-${i}.txt`);
    if (i < 24) clock.advance(40);
  }
  t.equal(changes.length, 1, 'no reload during the stream');
  t.same(clock.timerDelays(), [streamStart + 1000 - clock.now(), pathCheckAt - clock.now()], 'the reload is held at 1 s after the stream began');
  clock.advance(streamStart + 999 - clock.now());
  t.equal(changes.length, 1, 'not a millisecond early');
  clock.advance(1);
  t.equal((await nthChange(2)).snapshot.peerAuthentications[0]?.mode, 'DISABLE', 'the last write is in force');
});

t.test('stop() ends watching: later writes publish nothing and no timer is left', async (t) => {
  const clock = new ManualClock(Date.now());
  const { dir, watcher, changes } = await setup(t, { clock });
  const delivered = witness(t, dir);
  await watcher.stop();
  t.same(clock.timerDelays(), [], 'the path check is cancelled');
  await writeFile(join(dir, 'pay.yaml'), pa('pay', 'default', 'STRICT'));
  await delivered('pay.yaml');
  t.same(clock.timerDelays(), [], 'the write armed no reload');
  clock.advance(60_000);
  t.equal(changes.length, 0);
  t.equal(watcher.current.version, 1);
});

t.test('a Kubernetes volume update (the ..data symlink switched to a new timestamped dir) is seen', async (t) => {
  const { tmp, watcher, nthChange } = await setup(t, {
    prepare: async (dir) => {
      await mkdir(join(dir, '..2026_11_22_v1'));
      await writeFile(join(dir, '..2026_11_22_v1', 'shop.yaml'), pa('shop', 'default', 'PERMISSIVE'));
      await symlink('..2026_11_22_v1', join(dir, '..data'));
      await symlink(join('..data', 'shop.yaml'), join(dir, 'shop.yaml'));
      return dir;
    },
  });
  t.equal(watcher.current.peerAuthentications[0]?.mode, 'PERMISSIVE', 'read through the symlinks');
  // What the kubelet does: a new dir, a temp symlink to it, renamed over ..data.
  await mkdir(join(tmp, '..2026_11_22_v2'));
  await writeFile(join(tmp, '..2026_11_22_v2', 'shop.yaml'), pa('shop', 'default', 'STRICT'));
  await symlink('..2026_11_22_v2', join(tmp, '..data_tmp'));
  await rename(join(tmp, '..data_tmp'), join(tmp, '..data'));
  const c = await nthChange(1);
  t.equal(c.snapshot.peerAuthentications[0]?.mode, 'STRICT');
});

t.test('a config dir deleted keeps the config in force; made again, it is watched and loaded', async (t) => {
  const { dir, watcher, nthChange, changes, logLines } = await setup(t, { pathCheckMs: 100 });
  await rm(dir, { recursive: true, force: true });
  const deadline = Date.now() + 5000;
  while (!logLines.some((l) => l.msg === 'config dir is gone; keeping the config in force until it is back') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.ok(logLines.some((l) => l.msg === 'config dir is gone; keeping the config in force until it is back'), 'the loss is logged');
  t.equal(watcher.current.peerAuthentications[0]?.mode, 'PERMISSIVE', 'still in force');
  t.equal(changes.length, 0, 'nothing published while it was gone');
  await mkdir(dir);
  await writeFile(join(dir, 'shop.yaml'), pa('shop', 'default', 'STRICT'));
  const c = await nthChange(1);
  t.equal(c.snapshot.peerAuthentications[0]?.mode, 'STRICT', 'the new dir is loaded');
  await writeFile(join(dir, 'shop.yaml'), pa('shop', 'default', 'DISABLE'));
  const c2 = await nthChange(2);
  t.equal(c2.snapshot.peerAuthentications[0]?.mode, 'DISABLE', 'and watched: a later write is seen');
});

t.test('a config path that is a symlink switched to another dir is followed', async (t) => {
  const { tmp, watcher, nthChange } = await setup(t, {
    pathCheckMs: 100,
    prepare: async (base) => {
      await mkdir(join(base, 'v1'));
      await writeFile(join(base, 'v1', 'shop.yaml'), pa('shop', 'default', 'PERMISSIVE'));
      await symlink('v1', join(base, 'current'));
      return join(base, 'current');
    },
  });
  t.equal(watcher.current.peerAuthentications[0]?.mode, 'PERMISSIVE');
  await mkdir(join(tmp, 'v2'));
  await writeFile(join(tmp, 'v2', 'shop.yaml'), pa('shop', 'default', 'STRICT'));
  await symlink('v2', join(tmp, 'current.tmp'));
  await rename(join(tmp, 'current.tmp'), join(tmp, 'current'));
  const c = await nthChange(1);
  t.equal(c.snapshot.peerAuthentications[0]?.mode, 'STRICT', 'the new target is loaded');
  await writeFile(join(tmp, 'v2', 'shop.yaml'), pa('shop', 'default', 'DISABLE'));
  const c2 = await nthChange(2);
  t.equal(c2.snapshot.peerAuthentications[0]?.mode, 'DISABLE', 'and watched');
});
