import t from 'tap';
import { mkdtemp, readdir, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ManualClock } from '../../src/common/clock.js';
import { DataDirTokenLedger, TOKENS_DIR } from '../../src/auth/token-ledger.js';

/** The data-dir token ledger over real files: single use, revocation, restarts, crashes, bounds. */
async function dataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'meshd-ledger-'));
}

t.test('a single-use token is first used once, across concurrent uses and a reopen (restart)', async (t) => {
  const dir = await dataDir();
  const clock = new ManualClock();
  const ledger = await DataDirTokenLedger.open(dir, clock);
  const id = randomUUID();
  const exp = clock.now() + 3_600_000;
  const results = await Promise.all(Array.from({ length: 20 }, () => ledger.recordFirstUse(id, exp)));
  t.equal(results.filter(Boolean).length, 1, 'exactly one of 20 concurrent uses is the first');
  const reopened = await DataDirTokenLedger.open(dir, clock);
  t.equal(await reopened.recordFirstUse(id, exp), false, 'a restarted meshd still knows it was used');
  t.equal(await reopened.recordFirstUse(randomUUID(), exp), true, 'another token is unaffected');
  t.same((await readdir(join(dir, TOKENS_DIR, 'used'))).filter((n) => n.startsWith('.')), [], 'no temporary files left');
});

t.test('a revocation is seen by a ledger opened before it was written (another process, a running meshd)', async (t) => {
  const dir = await dataDir();
  const clock = new ManualClock();
  const running = await DataDirTokenLedger.open(dir, clock);
  const id = randomUUID();
  t.equal(await running.isRevoked(id), false);
  const cli = await DataDirTokenLedger.open(dir, clock);
  await cli.revoke(id);
  await cli.revoke(id);
  t.equal(await running.isRevoked(id), true, 'the running ledger sees it at the next check');
  t.equal(await running.isRevoked(randomUUID()), false);
});

t.test('ids that could name another file are refused; use records of expired tokens are pruned, the rest kept', async (t) => {
  const dir = await dataDir();
  const clock = new ManualClock();
  const ledger = await DataDirTokenLedger.open(dir, clock);
  for (const bad of ['../x', '.hidden', '', 'a/b', 'x'.repeat(200)]) {
    await t.rejects(ledger.revoke(bad), /is not a token id/, `revoke ${JSON.stringify(bad.slice(0, 20))}`);
    await t.rejects(ledger.recordFirstUse(bad, clock.now() + 1000), /is not a token id/);
  }
  const short = randomUUID();
  const long = randomUUID();
  await ledger.recordFirstUse(short, clock.now() + 60_000);
  await ledger.recordFirstUse(long, clock.now() + 86_400_000);
  clock.advance(3_600_000);
  await ledger.recordFirstUse(randomUUID(), clock.now() + 60_000); // a minute since the last prune: this use prunes
  const names = await readdir(join(dir, TOKENS_DIR, 'used'));
  t.notOk(names.some((n) => n.startsWith(short)), 'the expired token\'s record is gone');
  t.ok(names.some((n) => n.startsWith(long)), 'the unexpired one is kept');
  t.equal(await ledger.recordFirstUse(long, clock.now() + 86_400_000 - 3_600_000), false, 'and still refuses reuse');
});

t.test('a temporary file left by a crash is removed on open; a fresh one (another process writing) is left alone', async (t) => {
  const dir = await dataDir();
  await DataDirTokenLedger.open(dir, new ManualClock());
  const revoked = join(dir, TOKENS_DIR, 'revoked');
  await writeFile(join(revoked, '.stale.tmp'), 'x');
  const old = new Date(Date.now() - 3_600_000);
  await utimes(join(revoked, '.stale.tmp'), old, old);
  await writeFile(join(revoked, '.fresh.tmp'), 'x');
  await DataDirTokenLedger.open(dir, new ManualClock());
  t.same((await readdir(revoked)).sort(), ['.fresh.tmp']);
});
