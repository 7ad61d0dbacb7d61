import { spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A real PostgreSQL server for one test file: Debian's binaries, `initdb` into a temporary
 * directory, `pg_ctl start` on a free loopback port with the Unix socket in that directory.
 *
 * PostgreSQL refuses to run as root ("root" execution of the PostgreSQL server is not
 * permitted), and the suite runs as root here and in CI: then the server runs as `nobody`,
 * owning its temporary directory. Authentication is `trust` on loopback, superuser `meshd`.
 */

export interface Tap {
  teardown(fn: () => void | Promise<void>): void;
}

export interface TestPostgres {
  /** postgres://meshd@127.0.0.1:PORT/postgres */
  readonly url: string;
  readonly port: number;
  /** Stops the server (`pg_ctl stop -m fast`: sessions are ended, the data stays). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** A new, empty database on this server; returns its URL. */
  createDatabase(): Promise<string>;
  /** Runs SQL as the superuser on the given database URL (default: the server's own). */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: unknown[], url?: string): Promise<R[]>;
  /** Stops the server and removes its directory. */
  close(): Promise<void>;
}

/** The newest PostgreSQL installed by Debian's packages (/usr/lib/postgresql/<major>/bin). */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  let majors: number[] = [];
  try {
    majors = readdirSync(root).map(Number).filter((n) => Number.isInteger(n)).sort((a, b) => b - a);
  } catch { /* reported below */ }
  if (majors.length === 0) {
    throw new Error(`no PostgreSQL under ${root}: install Debian's postgresql package (scripts/test-prerequisites.sh does)`);
  }
  return join(root, String(majors[0]), 'bin');
}

function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0) throw new Error('running as root, and there is no unprivileged user "nobody" to run PostgreSQL as');
  return { uid, gid };
}

function run(bin: string, args: string[], user: { uid: number; gid: number } | undefined): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // spawn's uid/gid make the child setuid (libuv also drops supplementary groups).
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(user ?? {}) });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Servers of this process not yet stopped: stopped on exit even when a test crashed. */
const running = new Set<() => void>();
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => { for (const stop of running) stop(); });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      for (const stop of running) stop();
      process.kill(process.pid, signal);
    });
  }
}

export async function startPostgres(t: Tap): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const user = unprivilegedUser();
  const dir = mkdtempSync(join(tmpdir(), 'meshd-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');

  const init = await run(join(bin, 'initdb'), ['-D', data, '-U', 'meshd', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], user);
  if (init.code !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.code}):\n${init.output}`);
  }

  let port = 0;
  const pgCtl = (args: string[]) => run(join(bin, 'pg_ctl'), ['-D', data, ...args], user);
  const startServer = async (): Promise<void> => {
    // fsync off: a test server's data need not survive a power cut.
    const r = await pgCtl(['-l', log, '-w', '-t', '30', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`, 'start']);
    if (r.code !== 0) throw new Error(`pg_ctl start on port ${port} failed (${r.code}):\n${r.output}\n${readLog(log)}`);
  };
  const stopSync = (): void => {
    spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore', ...(user ?? {}) });
    rmSync(dir, { recursive: true, force: true });
  };
  running.add(stopSync);
  hookExit();

  // The port is free when probed and taken by the server a moment later: another process can
  // win it in between, so a failed bind is retried on another port.
  for (let attempt = 1; ; attempt++) {
    port = await freeLoopbackPort();
    try {
      await startServer();
      break;
    } catch (err) {
      if (attempt >= 3 || !/could not bind|already in use|could not create any TCP\/IP sockets/i.test((err as Error).message)) {
        running.delete(stopSync);
        stopSync();
        throw err;
      }
    }
  }

  const url = `postgres://meshd@127.0.0.1:${port}/postgres`;
  let databases = 0;
  const sql = async <R extends pg.QueryResultRow>(text: string, params: unknown[] = [], on = url): Promise<R[]> => {
    const client = new pg.Client({ connectionString: on });
    await client.connect();
    try {
      return (await client.query<R>(text, params)).rows;
    } finally {
      await client.end();
    }
  };
  let closed = false;
  const server: TestPostgres = {
    url,
    port,
    async stop() {
      const r = await pgCtl(['-m', 'fast', '-w', 'stop']);
      if (r.code !== 0) throw new Error(`pg_ctl stop failed (${r.code}):\n${r.output}`);
    },
    start: startServer,
    async createDatabase() {
      const name = `test_${process.pid}_${++databases}`;
      // FILE_COPY: about half the time of the default WAL_LOG strategy for an empty template.
      await sql(`CREATE DATABASE ${name} STRATEGY = FILE_COPY`);
      return `postgres://meshd@127.0.0.1:${port}/${name}`;
    },
    sql,
    async close() {
      if (closed) return;
      closed = true;
      running.delete(stopSync);
      await pgCtl(['-m', 'immediate', '-w', 'stop']);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  t.teardown(() => server.close());
  return server;
}

function readLog(log: string): string {
  try {
    return readFileSync(log, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}
