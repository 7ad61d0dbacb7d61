import t from 'tap';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Registry } from 'prom-client';
import { openCertificateAuthority, type CertificateAuthorityOptions } from '../../src/ca/authority.js';
import { CaMaterialError } from '../../src/ca/errors.js';
import { ManualClock } from '../../src/common/clock.js';
import { captureLogs } from '../common/log-capture.js';
import { chownToNobody, openAsNobody, opensslVerify, tempDir, x509 } from './helpers.js';

/**
 * A first start killed while it created the CA, at each point it can die, built on disk:
 * the next start completes root-1 or sets it aside (never deletes or overwrites it) and says
 * so in one log line; material an interrupted first start cannot leave still stops start-up.
 */
const ROOT = 'ca/roots/root-1';
const KEY = `${ROOT}/ca-key.pem`;
const CERT = `${ROOT}/ca-cert.pem`;
const JOURNAL = 'ca/journal.json';
const T0 = Date.now();

function open(dataDir: string, extra: Partial<CertificateAuthorityOptions> = {}) {
  return openCertificateAuthority({ dataDir, trustDomain: 'cluster.local', registry: new Registry(), autoRotate: false, ...extra });
}

/** Every file under dir with its bytes: to prove what moved and what did not change. */
function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}

const tmpName = (file: string) => `.${file}.0123456789ab.tmp`;

t.test('each point a first start can die at: the next start completes root-1 or sets it aside, with one log line saying which', async (t) => {
  const pristine = tempDir(t);
  await open(pristine);
  const key = readFileSync(join(pristine, KEY), 'utf8');
  const cert = readFileSync(join(pristine, CERT), 'utf8');
  const cases: Array<{ what: string; build: (d: string) => void; outcome: 'completed' | 'set-aside'; message: RegExp }> = [
    {
      what: 'root-1 created, nothing in it yet', outcome: 'set-aside', message: /^set aside root-1, which an interrupted first start left incomplete \(an empty directory\); nothing was signed with it: moved to .*\/ca\/roots\/\.abandoned-.*-root-1; creating a new root$/,
      build: (d) => mkdirSync(join(d, ROOT), { recursive: true }),
    },
    {
      what: 'key half written (temporary file only)', outcome: 'set-aside', message: /left incomplete \(only temporary files \(\.ca-key\.pem\.0123456789ab\.tmp\)\)/,
      build: (d) => { mkdirSync(join(d, ROOT), { recursive: true }); writeFileSync(join(d, ROOT, tmpName('ca-key.pem')), key.slice(0, 100)); },
    },
    {
      what: 'key in place, no certificate', outcome: 'set-aside', message: /left incomplete \(ca-key\.pem without ca-cert\.pem\); nothing was signed with it/,
      build: (d) => { mkdirSync(join(d, ROOT), { recursive: true }); writeFileSync(join(d, KEY), key, { mode: 0o600 }); },
    },
    {
      what: 'key in place, certificate half written', outcome: 'set-aside', message: /left incomplete \(ca-key\.pem without ca-cert\.pem\)/,
      build: (d) => { mkdirSync(join(d, ROOT), { recursive: true }); writeFileSync(join(d, KEY), key, { mode: 0o600 }); writeFileSync(join(d, ROOT, tmpName('ca-cert.pem')), cert.slice(0, 200)); },
    },
    {
      what: 'key and certificate in place, no journal', outcome: 'completed',
      message: /^completed root-1, which an interrupted first start left without a journal: its key and certificate check out, and .*\/ca\/journal\.json now names it$/,
      build: (d) => { mkdirSync(join(d, ROOT), { recursive: true }); writeFileSync(join(d, KEY), key, { mode: 0o600 }); writeFileSync(join(d, CERT), cert); },
    },
    {
      what: 'key and certificate in place, journal half written (temporary file)', outcome: 'completed', message: /^completed root-1/,
      build: (d) => {
        mkdirSync(join(d, ROOT), { recursive: true }); writeFileSync(join(d, KEY), key, { mode: 0o600 }); writeFileSync(join(d, CERT), cert);
        writeFileSync(join(d, 'ca', tmpName('journal.json')), readFileSync(join(pristine, JOURNAL), 'utf8').slice(0, 40));
      },
    },
  ];
  for (const c of cases) {
    const dir = tempDir(t);
    c.build(dir);
    const before = files(dir);
    const logs = captureLogs();
    const clock = new ManualClock(Date.now());
    const ca = await open(dir, { logger: logs.logger, clock });
    const recovery = logs.lines.filter((l) => /^(completed|set aside) root-1/.test(String(l.msg)));
    t.equal(recovery.length, 1, `${c.what}: one log line`);
    t.match(String(recovery[0]?.msg), c.message, `${c.what}: ${String(recovery[0]?.msg)}`);
    t.equal(recovery[0]?.level, 40, `${c.what}: at warn`);
    const root = ca.trustBundle().rootsPem;
    t.equal(root.length, 1, `${c.what}: a CA with one root`);
    const issued = await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/a/sa/b' });
    t.ok(opensslVerify(dir, root.join(''), issued.certPem).ok, `${c.what}: it signs, and what it signs verifies`);
    if (c.outcome === 'completed') {
      t.equal(root[0], cert, `${c.what}: the root that was on disk, completed`);
      t.equal(readFileSync(join(dir, KEY), 'utf8'), key, `${c.what}: its key untouched`);
    } else {
      t.not(root[0], cert, `${c.what}: a new root`);
      const abandoned = readdirSync(join(dir, 'ca/roots')).filter((n) => n.startsWith('.abandoned-'));
      t.same(abandoned, [`.abandoned-${new Date(clock.now()).toISOString().replace(/[:.]/g, '-')}-root-1`], `${c.what}: set aside under a dot name with the time`);
      // Every byte that was under root-1 is under the abandoned name now.
      const moved = Object.fromEntries(Object.entries(before).filter(([p]) => p.startsWith(ROOT)).map(([p, b]) => [p.replace(ROOT, `ca/roots/${abandoned[0]}`), b]));
      const after = files(dir);
      for (const [p, b] of Object.entries(moved)) t.equal(after[p], b, `${c.what}: ${p} kept byte for byte`);
    }
    const again = await open(dir);
    t.same(again.trustBundle().rootsPem, root, `${c.what}: a restart after that is an ordinary start`);
  }
});

t.test('setting aside never overwrites an earlier abandoned root, and a root for another trust domain is set aside, not completed', async (t) => {
  const pristine = tempDir(t);
  await open(pristine, { trustDomain: 'example.org' });
  const dir = tempDir(t);
  cpSync(join(pristine, 'ca/roots'), join(dir, 'ca/roots'), { recursive: true });
  const clock = new ManualClock(T0);
  const stamp = new Date(T0).toISOString().replace(/[:.]/g, '-');
  const earlier = join(dir, `ca/roots/.abandoned-${stamp}-root-1`);
  mkdirSync(earlier);
  writeFileSync(join(earlier, 'ca-key.pem'), 'an earlier abandoned key');
  const logs = captureLogs();
  await open(dir, { clock, logger: logs.logger });
  t.equal(readFileSync(join(earlier, 'ca-key.pem'), 'utf8'), 'an earlier abandoned key', 'the earlier one untouched');
  t.equal(readFileSync(join(dir, `ca/roots/.abandoned-${stamp}-root-1-2/ca-cert.pem`), 'utf8'), readFileSync(join(pristine, CERT), 'utf8'), 'the new one beside it, as -2');
  t.match(String(logs.lines.find((l) => String(l.msg).startsWith('set aside'))?.msg), /left unusable \(root certificate .* is not a usable root for cluster\.local: .*example\.org/);
});

t.test('what an interrupted first start cannot leave still stops start-up, names it, and nothing moves', async (t) => {
  const rotated = tempDir(t);
  const ca = await open(rotated, { rotationOverlapMs: 0 });
  await ca.prepareNextRoot();
  const single = tempDir(t);
  await open(single);
  const cases: Array<{ what: string; from: string; damage: (d: string) => void; message: RegExp }> = [
    { what: 'two roots and no journal (a lost journal)', from: rotated, damage: (d) => rmSync(join(d, JOURNAL)), message: /holds root-1, root-2 \(more than an interrupted first start leaves\); refusing to create a new root/ },
    { what: 'a certificate without its key', from: single, damage: (d) => { rmSync(join(d, JOURNAL)); rmSync(join(d, KEY)); }, message: /\(ca-cert\.pem without ca-key\.pem: a first start writes the key first\); refusing/ },
    { what: 'a file a first start does not write', from: single, damage: (d) => { rmSync(join(d, JOURNAL)); writeFileSync(join(d, ROOT, 'notes.txt'), 'x'); }, message: /notes\.txt is not a file a first start writes\); refusing/ },
    { what: 'another directory under roots', from: single, damage: (d) => { rmSync(join(d, JOURNAL)); renameSync(join(d, ROOT), join(d, 'ca/roots/root-7')); }, message: /holds root-7 \(more than/ },
  ];
  for (const c of cases) {
    const dir = tempDir(t);
    cpSync(c.from, dir, { recursive: true });
    c.damage(dir);
    const before = files(dir);
    const err = await open(dir).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof CaMaterialError, `${c.what}: refused`);
    t.match((err as Error).message, c.message, c.what);
    t.same(files(dir), before, `${c.what}: nothing moved or written`);
  }

  // A key that cannot be read says nothing about the root: no completion, no setting aside.
  const dir = tempDir(t);
  cpSync(single, dir, { recursive: true });
  rmSync(join(dir, JOURNAL));
  const asNobody = process.getuid?.() === 0; // root reads any file: open as nobody then
  if (asNobody) chownToNobody(dir);
  chmodSync(join(dir, KEY), 0o000);
  const before = files(dir);
  const err = asNobody ? openAsNobody(dir) : await open(dir).then(() => undefined, (e: unknown) => e);
  t.equal((err as Error).name, 'CaMaterialError', `unreadable key: refused${asNobody ? ' (opened as nobody)' : ''}`);
  t.match((err as Error).message, /^cannot check .*\/ca\/roots\/root-1, which an interrupted first start left: EACCES: permission denied, open '.*\/ca-key\.pem'$/);
  t.same(files(dir), before, 'unreadable key: nothing moved or written');
  chmodSync(join(dir, KEY), 0o600);
});

t.test('with a journal, a root directory it does not name (a rotation killed half-way) is left alone and never signs', async (t) => {
  const dir = tempDir(t);
  const first = await open(dir);
  const signing = first.trustBundle().rootsPem;
  mkdirSync(join(dir, 'ca/roots/root-2'));
  writeFileSync(join(dir, 'ca/roots/root-2/ca-key.pem'), readFileSync(join(dir, KEY)));
  const before = files(dir);
  const logs = captureLogs();
  const again = await open(dir, { logger: logs.logger, rotationOverlapMs: 0 });
  t.same(again.trustBundle().rootsPem, signing, 'root-1 alone, as the journal says');
  t.same(files(dir), before, 'root-2 untouched');
  t.notOk(logs.lines.some((l) => /completed|set aside/.test(String(l.msg))), 'no recovery with a journal');
  const next = await again.prepareNextRoot();
  t.equal(next.id, 'root-3', 'the next rotation steps over it');
  t.ok(existsSync(join(dir, 'ca/roots/root-2/ca-key.pem')));
  t.equal(x509(again.trustBundle().rootsPem[1]!).fingerprint256.replace(/:/g, '').toLowerCase(), next.fingerprint256);
});
