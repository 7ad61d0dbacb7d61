import { connect } from 'node:net';
import type { Test } from 'tap';
import { join } from 'node:path';
import { grpcChildEnv, LineProcess, type Line } from '../../proxyless/helpers/child.js';
import { decodeCsds, describe, notAcked, shortType, type XdsResourceStatus } from './csds.js';
import { repoPath } from '../../helpers/repo.js';

/**
 * gRPC C-core's xDS client and server (Debian's python3-grpcio 1.51, C-core 29) as child
 * processes: a second xDS implementation, independent of grpc-js-xds and stricter. Each process
 * has one XdsClient, read from GRPC_XDS_BOOTSTRAP; it is driven over JSON lines
 * (fixtures/lineproto.py) and reports what it accepted through CSDS (csds.ts).
 *
 *   const server = await startCoreServer({ bootstrap, port, name: 'greeter-1' });
 *   await server.serving(15_000);                       // its listener ACKED, the port accepting
 *   const client = await startCoreClient({ bootstrap });
 *   await client.call({ target: 'xds:///host:port', waitForReady: true, timeoutMs: 2000 });
 *   expectAllAcked(t, await client.dumpXds(), 'client', ['LDS', 'RDS', 'CDS', 'EDS']);
 *
 * Wrap each start in `stopAtTeardown` so a test that fails half-way still stops what it started.
 *
 * Debian's packages live under /usr/bin/python3 (a python3 earlier on PATH may be another build).
 * MESHD_TEST_GRPC_TRACE=xds_client (or any GRPC_TRACE list) traces every C-core child to its
 * kept stderr, for a failing test's messages.
 */
export const PYTHON = '/usr/bin/python3';
export const CORE_FIXTURES = repoPath('test/grpc-core/fixtures');

export interface CoreProcessOptions {
  /** The gRPC bootstrap file (meshd grpc-bootstrap / buildGrpcBootstrap). */
  bootstrap: string;
  /** For messages. */
  name?: string;
  /** More environment, e.g. GRPC_XDS_EXPERIMENTAL_RBAC. */
  env?: Record<string, string>;
  /** GRPC_TRACE tracers (true: xds_client) at GRPC_VERBOSITY=DEBUG, kept in `stderr`; default errors only. */
  trace?: boolean | string;
  /** How long the process may take to start (default 15 s). */
  readyTimeoutMs?: number;
  /**
   * GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS (default here 100; C-core's own is 5000). In Python,
   * C-core reads a socket only while something polls it: an RPC in progress, a server's threads,
   * or the backup poller. An idle client's xDS stream is therefore read only by the backup poller,
   * so with C-core's default an update reaches an idle client up to 5 s after meshd sent it
   * (measured: CDS sent at once, received 4.7 s later). 100 ms makes waits measure meshd.
   */
  backupPollMs?: number;
}

function coreEnv(opts: CoreProcessOptions): NodeJS.ProcessEnv {
  const trace = opts.trace === true ? 'xds_client' : opts.trace || process.env.MESHD_TEST_GRPC_TRACE;
  const grpc: Record<string, string> = trace ? { GRPC_TRACE: trace, GRPC_VERBOSITY: 'DEBUG' } : { GRPC_VERBOSITY: 'ERROR' };
  const poll = { GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS: String(opts.backupPollMs ?? 100) };
  const env = grpcChildEnv(opts.bootstrap, { ...grpc, ...poll, ...opts.env });
  if (!trace && opts.env?.GRPC_TRACE === undefined) delete env.GRPC_TRACE;
  for (const v of ['PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP']) delete env[v];
  return env;
}

export interface WaitAckedOptions {
  timeoutMs: number;
  /** At least one resource of each of these types (LDS, RDS, CDS, EDS). */
  types?: readonly string[];
  /** And this holds (e.g. a version moved). */
  until?: (resources: readonly XdsResourceStatus[]) => boolean;
  what?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A C-core fixture: the line protocol plus CSDS. */
export class CoreProcess extends LineProcess {
  constructor(name: string, script: string, args: readonly string[], opts: CoreProcessOptions) {
    // -B: no __pycache__ in the repository; -s: no user site-packages in the way of Debian's.
    super(name, PYTHON, ['-B', '-s', join(CORE_FIXTURES, script), ...args], coreEnv(opts));
  }

  /** What this process's XdsClient holds, resource by resource. */
  async dumpXds(): Promise<XdsResourceStatus[]> {
    const answer = await this.request({ op: 'dump' });
    if (answer.ok !== true || typeof answer.result !== 'string') throw new Error(`${this.name}: dump failed: ${JSON.stringify(answer)}`);
    return decodeCsds(Buffer.from(answer.result, 'base64'));
  }

  /**
   * Polls CSDS until every resource is ACKED (and `types`/`until` hold). A NACK ends the wait at
   * once with gRPC's text: it is a bug in the control plane, not a state to wait out.
   */
  async waitAllAcked(opts: WaitAckedOptions): Promise<XdsResourceStatus[]> {
    const what = opts.what ?? `${this.name}: every resource ACKED`;
    const deadline = Date.now() + opts.timeoutMs;
    let last: XdsResourceStatus[] = [];
    for (;;) {
      last = await this.dumpXds();
      const nacked = last.filter((r) => r.status === 'NACKED');
      if (nacked.length > 0) throw new Error(`${what}: ${this.name} NACKED ${describe(nacked)}`);
      const types = new Set(last.map((r) => shortType(r.typeUrl)));
      const done = last.length > 0 && notAcked(last).length === 0 && (opts.types ?? []).every((ty) => types.has(ty)) && (opts.until?.(last) ?? true);
      if (done) return last;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${opts.timeoutMs} ms; holds ${describe(last) || 'nothing'}; stderr: ${this.stderrTail()}`);
      await sleep(50);
    }
  }
}

export interface CoreServerOptions extends CoreProcessOptions {
  /** The WorkloadEntry's address (default 127.0.0.1); the listener asked for is named after it. */
  address?: string;
  port: number;
  /** Answered in every reply as `server`. */
  name: string;
}

/** Whether something accepts TCP connections on host:port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export class CoreServer extends CoreProcess {
  readonly address: string;
  readonly port: number;
  /** The server listener C-core asks for: the bootstrap's template filled with address:port. */
  readonly listenerName: string;

  constructor(opts: CoreServerOptions) {
    const address = opts.address ?? '127.0.0.1';
    super(opts.name, 'core-server.py', [address, String(opts.port), opts.name], opts);
    this.address = address;
    this.port = opts.port;
    this.listenerName = `xds.istio.io/grpc/lds/inbound/${address.includes(':') ? `[${address}]` : address}:${opts.port}`;
  }

  /**
   * Serving: its listener is ACKED and the port accepts connections (an xDS server binds only once
   * the listener arrived). The first handshakes may still race the certificate read: use callUntil.
   */
  async serving(timeoutMs = 15_000): Promise<XdsResourceStatus[]> {
    const deadline = Date.now() + timeoutMs;
    const acked = await this.waitAllAcked({
      timeoutMs, what: `${this.name}: listener ${this.listenerName} ACKED`,
      until: (rs) => rs.some((r) => r.name === this.listenerName),
    });
    const host = this.address === '0.0.0.0' ? '127.0.0.1' : this.address === '::' ? '::1' : this.address;
    while (!(await accepts(host, this.port))) {
      if (Date.now() > deadline) throw new Error(`${this.name}: listener ACKED but nothing accepts on ${host}:${this.port} within ${timeoutMs} ms; stderr: ${this.stderrTail()}`);
      await sleep(50);
    }
    return acked;
  }
}

export interface CallOptions {
  target: string;
  /** `xds` (default): xds_channel_credentials over insecure; `insecure`: a plain client. */
  creds?: 'xds' | 'insecure';
  method?: 'Hello' | 'Slow';
  /** For Slow. */
  delayMs?: number;
  /** Deadline of the call (default 5 s). */
  timeoutMs?: number;
  waitForReady?: boolean;
  /** A new channel for this call only (a new connection and handshake), closed after it. */
  fresh?: boolean;
}

export interface Reply { server: string; transport: 'ssl' | 'insecure'; securityType: string; peer: string; peerSerial: string }
export type CallOutcome = { ok: true; result: Reply } | { ok: false; code: string; details: string };

export interface LoopOptions extends CallOptions {
  /** Pause between calls (default 20 ms). */
  intervalMs?: number;
}

export interface LoopResult {
  calls: number;
  failures: number;
  /** The first ten failures: `HH:MM:SS CODE: details`. */
  errors: string[];
  servers: Record<string, number>;
  transports: Record<string, number>;
}

function callCommand(o: CallOptions): Record<string, unknown> {
  const { timeoutMs, ...rest } = o;
  return { ...rest, deadlineMs: timeoutMs ?? 5000 };
}

export class CoreClient extends CoreProcess {
  constructor(opts: CoreProcessOptions) {
    super(opts.name ?? 'core-client', 'core-client.py', [], opts);
  }

  async call(o: CallOptions): Promise<CallOutcome> {
    const answer = await this.request({ op: 'call', ...callCommand(o) }, (o.timeoutMs ?? 5000) + 15_000);
    return answer as unknown as CallOutcome;
  }

  /** Calls until `accept` says yes (e.g. ok over the expected transport); the last outcome in the error otherwise. */
  async callUntil(o: CallOptions, accept: (r: CallOutcome) => boolean, timeoutMs: number, what: string): Promise<CallOutcome> {
    const deadline = Date.now() + timeoutMs;
    let last: CallOutcome | undefined;
    while (Date.now() < deadline) {
      last = await this.call({ timeoutMs: 2000, ...o });
      if (accept(last)) return last;
      await sleep(50);
    }
    throw new Error(`${what}: not within ${timeoutMs} ms; last outcome ${JSON.stringify(last)}; stderr: ${this.stderrTail()}`);
  }

  /** Calls back to back on a thread of the client until loopStop. */
  async loopStart(loop: string, o: LoopOptions): Promise<void> {
    const answer = await this.request({ op: 'loop-start', loop, ...callCommand(o) });
    if (answer.ok !== true) throw new Error(`${this.name}: loop-start ${loop}: ${JSON.stringify(answer)}`);
  }

  async loopStop(loop: string): Promise<LoopResult> {
    const answer: Line = await this.request({ op: 'loop-stop', loop }, 30_000);
    if (answer.ok !== true) throw new Error(`${this.name}: loop-stop ${loop}: ${JSON.stringify(answer)}`);
    return answer.result as LoopResult;
  }
}

/** Starts a C-core xDS server and waits until the process is up (not until it serves: see serving()). */
export async function startCoreServer(opts: CoreServerOptions): Promise<CoreServer> {
  const server = new CoreServer(opts);
  try {
    await server.waitFor((l) => l.event === 'ready', opts.readyTimeoutMs ?? 15_000, 'start');
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

/** Starts a C-core xDS client process; its channels open on the first call. */
export async function startCoreClient(opts: CoreProcessOptions): Promise<CoreClient> {
  const client = new CoreClient(opts);
  try {
    await client.waitFor((l) => l.event === 'ready', opts.readyTimeoutMs ?? 15_000, 'start');
  } catch (e) {
    await client.stop();
    throw e;
  }
  return client;
}

/**
 * Registers one teardown that stops every process handed to the returned function (the ones
 * started so far, even if the test failed before its other starts), then runs `after` (e.g.
 * closing the mesh). Returns what it was given, so starts stay one-liners:
 *   const keep = stopAtTeardown(t, () => mesh.close());
 *   const [server, client] = await Promise.all([keep(startCoreServer(…)), keep(startCoreClient(…))]);
 */
export function stopAtTeardown(t: Test, after?: () => Promise<void>): <P extends LineProcess>(p: P | Promise<P>) => Promise<P> {
  const started: LineProcess[] = [];
  t.teardown(async () => {
    await Promise.all(started.map((p) => p.stop()));
    await after?.();
  });
  return async (p) => {
    const process = await p;
    started.push(process);
    return process;
  };
}
