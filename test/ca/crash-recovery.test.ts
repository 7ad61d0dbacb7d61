import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Registry } from 'prom-client';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import { captureLogs } from '../common/log-capture.js';
import { tempDir, x509 } from './helpers.js';
import { meshdCommand } from '../helpers/meshd-cli.js';
import { REPO } from '../helpers/repo.js';

/**
 * Real `meshd ca root` processes SIGKILLed while they create the first root, and a start on
 * what each left. Where the kill lands after a trigger is a race; every outcome must start.
 * The states themselves are built deterministically in first-root-recovery.test.ts and
 * store-lock.test.ts.
 */
const MESHD = meshdCommand().flat();

interface Killed { code: number | null; signal: NodeJS.Signals | null; left: string[] }

/** Every path under dir (files and directories), relative, sorted. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      out.push(relative(dir, join(d, e.name)));
      if (e.isDirectory()) walk(join(d, e.name));
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * Runs `meshd ca root` (optionally as PID 1 of a new PID namespace, as in a container without an
 * init) and SIGKILLs its process group as soon as `trigger` exists under the data dir.
 */
function killWhen(dataDir: string, trigger: string, pid1 = false): Promise<Killed> {
  // An RSA 4096 root's key generation holds the CA lock for a second or more: a kill at the lock lands inside it.
  const keyType = trigger === 'ca/.lock' ? 'rsa-4096' : 'ec-p256';
  const args = [...MESHD, 'ca', 'root', '--data-dir', dataDir, '--root-key-type', keyType];
  const [cmd, ...rest] = pid1 ? ['unshare', '--fork', '--pid', '--mount-proc', ...args] : args;
  const child = spawn(cmd!, rest, { cwd: REPO, detached: true, stdio: 'ignore' });
  return new Promise((resolveKilled) => {
    let done = false;
    const poll = (): void => {
      if (done) return;
      if (existsSync(join(dataDir, trigger))) {
        try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
        return;
      }
      setTimeout(poll, 1);
    };
    child.once('exit', (code, signal) => {
      done = true;
      resolveKilled({ code, signal, left: tree(join(dataDir, 'ca')) });
    });
    poll();
  });
}

async function startsAfter(t: { ok(v: unknown, m: string): void; equal(a: unknown, b: unknown, m: string): void; comment(m: string): void }, dataDir: string, what: string): Promise<string[]> {
  const logs = captureLogs();
  const ca = await openCertificateAuthority({ dataDir, trustDomain: 'cluster.local', registry: new Registry(), autoRotate: false, logger: logs.logger });
  const roots = ca.trustBundle().rootsPem;
  t.equal(roots.length, 1, `${what}: the next start has a CA with one root`);
  const journal = JSON.parse(readFileSync(join(dataDir, 'ca/journal.json'), 'utf8')) as { roots: Array<{ id: string; fingerprint256: string }> };
  t.equal(journal.roots[0]!.fingerprint256, x509(readFileSync(join(dataDir, 'ca/roots/root-1/ca-cert.pem'), 'utf8')).fingerprint256.replace(/:/g, '').toLowerCase(),
    `${what}: the journal names the root-1 on disk`);
  ca.stop();
  return logs.lines.filter((l) => /^(completed root-1|set aside root-1|taking over a stale CA lock)/.test(String(l.msg))).map((l) => String(l.msg).split(':')[0]!);
}

t.test('meshd ca root SIGKILLed at points of its first start: the next start succeeds every time', async (t) => {
  const triggers = ['ca/.lock', 'ca/roots/root-1', 'ca/roots/root-1/ca-key.pem', 'ca/roots/root-1/ca-cert.pem'];
  for (const trigger of triggers) {
    const dir = tempDir(t);
    const killed = await killWhen(dir, trigger);
    const what = `killed once ${trigger} existed`;
    t.comment(`${what}: ${killed.signal ?? `exit ${killed.code}`}, left ${killed.left.join(' ') || 'nothing'}`);
    const recoveries = await startsAfter(t, dir, what);
    t.comment(`${what}: next start: ${recoveries.join('; ') || 'an ordinary start'}`);
  }
});

const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['--fork', '--pid', '--mount-proc', 'true']).status === 0;

t.test('meshd as PID 1 (a container without an init) SIGKILLed holding the CA lock: the next PID 1 takes the lock over and starts', { skip: canUnshare ? false : 'needs root and unshare(1) for a PID namespace' }, async (t) => {
  const dir = tempDir(t);
  const killed = await killWhen(dir, 'ca/.lock', true);
  t.equal(killed.signal, 'SIGKILL', 'killed while creating the root');
  t.equal(readFileSync(join(dir, 'ca/.lock'), 'utf8').split('\n')[0], '1', 'the lock it left names PID 1');
  const again = spawnSync('unshare', ['--fork', '--pid', '--mount-proc', ...MESHD, 'ca', 'root', '--data-dir', dir], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  t.equal(again.status, 0, `the next PID 1 starts: ${again.stderr.split('\n').filter((l) => /"level":(40|50)/.test(l)).join('\n').slice(0, 600)}`);
  t.match(again.stdout, /^-----BEGIN CERTIFICATE-----/, 'and prints the trust bundle');
  t.match(again.stderr, /"reason":"it names PID 1, which is now this process: the PID was reused after its holder ended \(this process started at tick \d+, the lock's at tick \d+\)".*"msg":"taking over a stale CA lock"/);
  t.notOk(existsSync(join(dir, 'ca/.lock')), 'and releases it');
});
