import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/**
 * A proxyless gRPC process (server or client) run as its own Node process: grpc-js-xds's
 * XdsClient is a per-process singleton read from GRPC_XDS_BOOTSTRAP, so each workload needs its
 * own process. Talks JSON lines; keeps everything it printed for failure messages.
 */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export interface Line { id?: number; event?: string; ok?: boolean; [k: string]: unknown }

const PROXY_VARS = ['http_proxy', 'https_proxy', 'grpc_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'GRPC_PROXY', 'no_grpc_proxy', 'NO_PROXY', 'no_proxy'];

export class GrpcProcess {
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  private readonly waiters = new Set<{ pred: (l: Line) => boolean; resolve: (l: Line) => void }>();
  private nextId = 1;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly child: ChildProcess;

  constructor(readonly name: string, script: string, args: string[], bootstrapFile: string, extraEnv: Record<string, string> = {}) {
    const env: NodeJS.ProcessEnv = { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrapFile, ...extraEnv };
    for (const v of PROXY_VARS) delete env[v];
    delete env.GRPC_XDS_BOOTSTRAP_CONFIG;
    delete env.NODE_OPTIONS; // no tsx loader in the children: they are plain .mjs
    this.child = spawn(process.execPath, [join(FIXTURES, script), ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (text) => {
      let line: Line;
      try { line = JSON.parse(text) as Line; } catch { this.stderr.push(`stdout: ${text}`); return; }
      this.lines.push(line);
      for (const w of [...this.waiters]) if (w.pred(line)) { this.waiters.delete(w); w.resolve(line); }
    });
    createInterface({ input: this.child.stderr! }).on('line', (text) => { if (this.stderr.length < 200) this.stderr.push(text); });
    this.child.on('exit', (code, signal) => { this.exit = { code, signal }; });
  }

  get exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exit;
  }

  crashes(): Line[] {
    return this.lines.filter((l) => l.event === 'crash');
  }

  waitFor(pred: (l: Line) => boolean, timeoutMs: number, what: string): Promise<Line> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (l: Line) => { clearTimeout(timer); resolve(l); } };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; lines: ${JSON.stringify(this.lines.slice(-5))}; stderr: ${this.stderr.slice(-5).join(' | ')}`));
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
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(timer);
  }
}
