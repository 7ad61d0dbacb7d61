import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Registry } from 'prom-client';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import { RootStore } from '../../src/ca/store.js';
import { readBootId, readStartTime } from '../../src/ca/lock-owner.js';
import { captureLogs } from '../common/log-capture.js';
import { tempDir } from './helpers.js';
import { REPO, nodeScript, testModule } from '../helpers/repo.js';

/**
 * The CA lock (<data-dir>/ca/.lock) against real processes: a stale lock naming our own PID
 * (PID 1 in a container after a crash) is taken over, a live holder is waited for until it goes.
 */

/** A child process holding the CA lock of dataDir; resolves once it has it. */
async function lockHolder(t: { teardown(fn: () => unknown): void }, dataDir: string): Promise<ChildProcess> {
  const child = spawn(...nodeScript(testModule(import.meta.url, 'fixtures/hold-ca-lock'), [dataDir]), { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const lines = createInterface({ input: child.stdout! });
  const [line] = await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => { throw new Error('the lock holder exited'); })]) as [string];
  if (line !== 'locked') throw new Error(`unexpected output from the lock holder: ${line}`);
  return child;
}

t.test('a lock file naming our own PID with another start time is taken over, with a log line saying why', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'ca'), { recursive: true });
  const lock = join(dir, 'ca/.lock');
  // What our predecessor under this PID left: it crashed while holding the lock.
  writeFileSync(lock, `${process.pid}\nstart 1\nboot ${readBootId()}\nprocess 0123456789abcdef\n`);
  const logs = captureLogs();
  const ca = await openCertificateAuthority({ dataDir: dir, trustDomain: 'cluster.local', registry: new Registry(), logger: logs.logger });
  t.equal(ca.status().roots.length, 1, 'the CA was created');
  const line = logs.lines.find((l) => l.msg === 'taking over a stale CA lock');
  t.ok(line, 'logged');
  t.equal(line?.pid, process.pid);
  t.match(String(line?.reason), new RegExp(`^it names PID ${process.pid}, which is now this process: the PID was reused after its holder ended \\(this process started at tick ${readStartTime('self')}, the lock's at tick 1\\)$`));
  t.notOk(existsSync(lock), 'released afterwards');
});

t.test('a lock held by a live process is respected until that process goes; a live PID with another start time is not the holder', async (t) => {
  const dir = tempDir(t);
  const holder = await lockHolder(t, dir);
  const lockText = readFileSync(join(dir, 'ca/.lock'), 'utf8');
  t.match(lockText, new RegExp(`^${holder.pid}\nstart ${readStartTime(holder.pid!)}\nboot ${readBootId()}\nprocess [0-9a-f]{16}\n$`), 'the holder wrote PID, start time, boot id and token');

  const logs = captureLogs();
  const store = new RootStore(dir, logs.logger);
  await t.rejects(store.withLock(async () => 'mine', 300), { message: new RegExp(`^CA lock .*\\.lock is held by process ${holder.pid} \\(started at tick \\d+\\); if no meshd is using this data dir, remove the file$`) },
    'while the holder lives, a short wait ends in a refusal naming it');
  let ran = false;
  const waiting = store.withLock(async () => { ran = true; return 'mine'; }, 60_000);
  const flushed = new Promise((r) => setImmediate(r));
  await flushed;
  t.equal(ran, false, 'still waiting');
  holder.kill('SIGKILL');
  t.equal(await waiting, 'mine', 'taken once the holder is gone');
  t.match(logs.lines.find((l) => l.msg === 'taking over a stale CA lock')?.reason, `process ${holder.pid} is gone`);

  // A lock whose PID is alive but belongs to a process started at another time than the holder.
  const other = tempDir(t);
  const live = await lockHolder(t, tempDir(t));
  mkdirSync(join(other, 'ca'), { recursive: true });
  writeFileSync(join(other, 'ca/.lock'), `${live.pid}\nstart 1\nboot ${readBootId()}\nprocess 0123456789abcdef\n`);
  const logs2 = captureLogs();
  t.equal(await new RootStore(other, logs2.logger).withLock(async () => 'taken', 60_000), 'taken');
  t.match(logs2.lines.find((l) => l.msg === 'taking over a stale CA lock')?.reason, new RegExp(`^PID ${live.pid} now belongs to a process started at tick \\d+, not the holder \\(started at tick 1\\)$`));
});
