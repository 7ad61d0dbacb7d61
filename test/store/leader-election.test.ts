import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Registry } from 'prom-client';
import { NotLeaderError } from '../../src/store/errors.js';
import { LEADER_LOCK, LOCK_NAMESPACE } from '../../src/store/postgres/advisory-locks.js';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { createStoreKeyFile } from '../../src/store/key-file.js';
import { tempDir } from '../ca/helpers.js';
import { CREATE_FENCED_LOG, fencedLogProblems, fencedLogWriter, type FencedLogRow } from './helpers/fenced-log.js';
import { startPostgres, type Tap } from './helpers/postgres.js';
import { metric, newKeyRing, openTestStore, systemRandom, waitFor } from './helpers/store.js';
import { nodeScript, testModule } from '../helpers/repo.js';

const pg = await startPostgres(t);
/** The contenders poll every 100 ms; a takeover is due within that plus a query. This deadline leaves room for a loaded machine. */
const TAKEOVER_DEADLINE_MS = 10_000;

async function contenders(t: Tap, n: number, registries?: Registry[]): Promise<{ url: string; stores: PostgresStore[] }> {
  const url = await pg.createDatabase();
  const keys = newKeyRing();
  const stores = await Promise.all(Array.from({ length: n }, (_, i) => openTestStore(t, url, { keys, replicaId: `replica-${i + 1}`, ...(registries ? { registry: registries[i]! } : {}) })));
  return { url, stores };
}

const leaders = (stores: readonly PostgresStore[]) => stores.filter((s) => s.leader.current() !== undefined);

/** The backend pid of the session holding the leader lock. */
async function leaderBackend(url: string): Promise<number> {
  const rows = await pg.sql<{ pid: number }>(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2 AND granted", [LOCK_NAMESPACE, LEADER_LOCK], url);
  if (rows.length !== 1) throw new Error(`${rows.length} sessions hold the leader lock`);
  return rows[0]!.pid;
}

t.test('of three contenders exactly one leads, and keeps leading while every contender polls', async (t) => {
  const registries = [new Registry(), new Registry(), new Registry()];
  const { url, stores } = await contenders(t, 3, registries);
  const leader = await waitFor('a leader', () => leaders(stores)[0]);
  const start = stores.map((s) => s.leader.polls);
  await waitFor('five more polls by every contender', () => (stores.every((s, i) => s.leader.polls >= start[i]! + 5) ? true : undefined));
  t.same(leaders(stores), [leader], 'still exactly one leader');
  t.equal(leader.leader.current()!.term, 1, 'the first term: nobody else ever took the lock');
  t.same(await pg.sql('SELECT term::int, holder FROM meshd_leader', [], url), [{ term: 1, holder: `replica-${stores.indexOf(leader) + 1}` }]);
  t.same(await Promise.all(registries.map((r) => metric(r, 'meshd_store_leader'))), stores.map((s) => (s === leader ? 1 : 0)), 'meshd_store_leader says who leads');
});

t.test("killing the leader's session hands the lead to another within the poll bound; fenced writes never interleave", async (t) => {
  const { url, stores } = await contenders(t, 3);
  await pg.sql(CREATE_FENCED_LOG, [], url);
  const log = fencedLogWriter(url);
  t.teardown(() => log.close());
  let stop = false;
  // Each contender, while it believes it leads, appends to the log with its fence.
  const refused: number[] = [];
  const writers = stores.map(async (store, i) => {
    while (!stop) {
      const fence = store.leader.current();
      if (fence) {
        await log.append(fence, `replica-${i + 1}`).catch((err: unknown) => {
          if (err instanceof NotLeaderError) refused.push(fence.term);
          else if (!(err instanceof Error && /unreachable/.test(err.message))) throw err;
        });
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  });

  let leader = await waitFor('a leader', () => leaders(stores)[0]);
  for (let kill = 1; kill <= 4; kill++) {
    const old = leader;
    const oldFence = old.leader.current()!;
    await waitFor(`writes in term ${oldFence.term}`, async () => (
      (await pg.sql('SELECT 1 FROM fenced_log WHERE term = $1', [oldFence.term], url)).length > 0 ? true : undefined));
    await pg.sql('SELECT pg_terminate_backend($1)', [await leaderBackend(url)], url);
    await waitFor('the killed leader to know it lost', () => (old.leader.current() === undefined ? true : undefined), TAKEOVER_DEADLINE_MS);
    leader = await waitFor('a new leader', () => {
      const now = leaders(stores);
      return now.length === 1 && now[0]!.leader.current()!.term > oldFence.term ? now[0] : undefined;
    }, TAKEOVER_DEADLINE_MS);
    t.ok(leader.leader.current()!.term > oldFence.term, `kill ${kill}: term ${oldFence.term} → ${leader.leader.current()!.term}`);
    // The old leader's fence is dead, whatever that replica still believes.
    await t.rejects(log.append(oldFence, 'stale'), NotLeaderError, `kill ${kill}: a write with the old fence is refused`);
  }
  stop = true;
  await Promise.all(writers);
  const rows = await pg.sql<FencedLogRow>('SELECT seq, term, holder FROM fenced_log ORDER BY seq', [], url);
  t.same(fencedLogProblems(rows), [], `${rows.length} fenced writes, in ${new Set(rows.map((r) => r.term)).size} terms, never interleaved`);
  t.notOk(rows.some((r) => r.holder === 'stale'));
});

t.test('a leader whose session stops answering gives the lead up after its health query times out', async (t) => {
  const url = await pg.createDatabase();
  const keys = newKeyRing();
  const stores = await Promise.all([1, 2].map((i) => openTestStore(t, url, { keys, replicaId: `replica-${i}`, queryTimeoutMs: 1_000 })));
  const leader = await waitFor('a leader', () => leaders(stores)[0]);
  const term = leader.leader.current()!.term;
  const pid = await leaderBackend(url);
  // The backend is frozen: the socket stays open, queries go unanswered, the lock stays granted.
  process.kill(pid, 'SIGSTOP');
  t.teardown(() => { try { process.kill(pid, 'SIGCONT'); } catch { /* already gone */ } });
  await waitFor('the frozen leader to give up', () => (leader.leader.current() === undefined ? true : undefined), 10_000);
  t.same(leaders(stores), [], 'no one leads while the frozen session still holds the lock');
  process.kill(pid, 'SIGCONT'); // it reads the closed socket and exits, freeing the lock
  const next = await waitFor('a new leader', () => leaders(stores)[0], TAKEOVER_DEADLINE_MS);
  t.ok(next.leader.current()!.term > term);
});

t.test('a leader that shuts down hands over at the next poll', async (t) => {
  const { stores } = await contenders(t, 2);
  const leader = await waitFor('a leader', () => leaders(stores)[0]);
  const other = stores.find((s) => s !== leader)!;
  const term = leader.leader.current()!.term;
  await leader.close();
  t.equal(leader.leader.current(), undefined, 'the closed store no longer leads');
  const fence = await waitFor('the other to lead', () => other.leader.current(), TAKEOVER_DEADLINE_MS);
  t.equal(fence.term, term + 1);
});

interface Contender { id: string; child: ChildProcess; lines: Array<Record<string, unknown>> }

t.test('three contender processes: SIGKILL of the leader hands the lead to another within the poll bound', async (t) => {
  const url = await pg.createDatabase();
  await pg.sql(CREATE_FENCED_LOG, [], url);
  const keyFile = join(tempDir(t, 'meshd-store-key-'), 'store.key');
  await createStoreKeyFile(keyFile, systemRandom);
  const spawnContender = (id: string): Contender => {
    const child = spawn(...nodeScript(testModule(import.meta.url, 'fixtures/leader-contender'), [url, keyFile, id]), { stdio: ['ignore', 'pipe', 'inherit'] });
    const c: Contender = { id, child, lines: [] };
    createInterface({ input: child.stdout! }).on('line', (line) => { c.lines.push(JSON.parse(line) as Record<string, unknown>); });
    t.teardown(() => { child.kill('SIGKILL'); });
    return c;
  };
  const all = ['p1', 'p2', 'p3'].map(spawnContender);
  const state = (c: Contender) => c.lines[c.lines.length - 1];
  await waitFor('all three to report', () => (all.every((c) => state(c)) ? true : undefined), 60_000);
  const first = await waitFor('a leader', () => {
    const now = all.filter((c) => state(c)?.event === 'leader');
    return now.length === 1 ? now[0] : undefined;
  });
  const firstTerm = state(first)!.term as number;
  await waitFor('fenced writes by the first leader', async () => ((await pg.sql('SELECT 1 FROM fenced_log WHERE term = $1', [firstTerm], url)).length > 0 ? true : undefined));
  first.child.kill('SIGKILL');
  const rest = all.filter((c) => c !== first);
  const next = await waitFor('another process to lead', () => {
    const now = rest.filter((c) => state(c)?.event === 'leader');
    return now.length === 1 ? now[0] : undefined;
  }, TAKEOVER_DEADLINE_MS);
  t.ok((state(next)!.term as number) > firstTerm, `term ${firstTerm} (${first.id}) → ${String(state(next)!.term)} (${next.id})`);
  await waitFor('fenced writes by the new leader', async () => ((await pg.sql('SELECT 1 FROM fenced_log WHERE term = $1', [state(next)!.term], url)).length > 0 ? true : undefined));
  t.equal(rest.filter((c) => state(c)?.event === 'leader').length, 1, 'one leader among the survivors');
  for (const c of rest) c.child.kill('SIGTERM');
  await Promise.all(rest.map((c) => new Promise((r) => (c.child.exitCode !== null ? r(undefined) : c.child.once('exit', r)))));
  const rows = await pg.sql<FencedLogRow>('SELECT seq, term, holder FROM fenced_log ORDER BY seq', [], url);
  t.same(fencedLogProblems(rows), [], `${rows.length} fenced writes by ${new Set(rows.map((r) => r.holder)).size} processes, never interleaved`);
  t.notOk(all.some((c) => c.lines.some((l) => l.event === 'error')), 'no contender hit an unexpected error');
});
