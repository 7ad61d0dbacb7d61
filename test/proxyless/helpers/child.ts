import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { repoPath } from '../../helpers/repo.js';

/**
 * A proxyless gRPC process (server or client) run as its own process: gRPC's XdsClient is a
 * per-process singleton read from GRPC_XDS_BOOTSTRAP (in grpc-js-xds and in C-core alike), so each
 * workload needs its own process. Talks JSON lines; keeps what it printed for failure messages.
 */
export const FIXTURES = repoPath('test/proxyless/fixtures');

export interface Line { id?: number; event?: string; ok?: boolean; [k: string]: unknown }

const PROXY_VARS = ['http_proxy', 'https_proxy', 'grpc_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'GRPC_PROXY', 'no_grpc_proxy', 'NO_PROXY', 'no_proxy'];

/** Lines of stderr kept (the last ones: a gRPC trace can run to megabytes). */
const STDERR_LINES = 400;

/** The environment of a gRPC child: this one's, minus proxies and any inline bootstrap, plus the bootstrap file. */
export function grpcChildEnv(bootstrapFile: string, extraEnv: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrapFile, ...extraEnv };
  for (const v of PROXY_VARS) delete env[v];
  delete env.GRPC_XDS_BOOTSTRAP_CONFIG;
  delete env.NODE_OPTIONS; // no tsx loader in the children: they are plain .mjs or Python
  return env;
}

/** A child process that answers JSON-line commands ({id, op, ...} → {id, ok, ...}) and prints events ({event, ...}). */
export class LineProcess {
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  private readonly waiters = new Set<{ pred: (l: Line) => boolean; resolve: (l: Line) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly child: ChildProcess;
  private readonly gone: Promise<void>;

  constructor(readonly name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (text) => {
      let line: Line;
      try { line = JSON.parse(text) as Line; } catch { this.keepStderr(`stdout: ${text}`); return; }
      this.lines.push(line);
      for (const w of [...this.waiters]) if (w.pred(line)) { this.waiters.delete(w); w.resolve(line); }
    });
    createInterface({ input: this.child.stderr! }).on('line', (text) => this.keepStderr(text));
    this.gone = new Promise((resolve) => this.child.on('close', (code, signal) => {
      this.exit = { code, signal };
      // 'close' comes after the last stdout line: nothing more will come, so whoever waits learns it now.
      for (const w of [...this.waiters]) { this.waiters.delete(w); w.reject(new Error(`${this.name} exited ${JSON.stringify(this.exit)}; stderr: ${this.stderrTail()}`)); }
      resolve();
    }));
    // A write to a child that already exited must not take the test process down.
    this.child.stdin!.on('error', () => undefined);
  }

  private keepStderr(text: string): void {
    this.stderr.push(text);
    if (this.stderr.length > STDERR_LINES) this.stderr.splice(0, this.stderr.length - STDERR_LINES);
  }

  get exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exit;
  }

  crashes(): Line[] {
    return this.lines.filter((l) => l.event === 'crash');
  }

  /** The last `n` stderr lines, for failure messages. */
  stderrTail(n = 5): string {
    return this.stderr.slice(-n).join(' | ');
  }

  waitFor(pred: (l: Line) => boolean, timeoutMs: number, what: string): Promise<Line> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    if (this.exit) return Promise.reject(new Error(`${this.name}: no ${what}: exited ${JSON.stringify(this.exit)}; stderr: ${this.stderrTail()}`));
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (l: Line) => { clearTimeout(timer); resolve(l); },
        reject: (e: Error) => { clearTimeout(timer); reject(new Error(`no ${what}: ${e.message}`)); },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; lines: ${JSON.stringify(this.lines.slice(-5))}; stderr: ${this.stderrTail()}`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  async request(cmd: Record<string, unknown>, timeoutMs = 15_000): Promise<Line> {
    const id = this.nextId++;
    this.child.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
    return this.waitFor((l) => l.id === id, timeoutMs, `answer to ${String(cmd.op)}`);
  }

  async stop(): Promise<void> {
    if (this.exit) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await this.gone;
    clearTimeout(timer);
  }
}

/** A grpc-js-xds fixture (fixtures/*.mjs) under this Node. */
export class GrpcProcess extends LineProcess {
  constructor(name: string, script: string, args: string[], bootstrapFile: string, extraEnv: Record<string, string> = {}) {
    super(name, process.execPath, [join(FIXTURES, script), ...args], grpcChildEnv(bootstrapFile, extraEnv));
  }
}
