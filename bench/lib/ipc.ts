import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Request/response over the fork IPC channel between the bench orchestrator and its
 * children (server host, bare server, load generator). Structured clone ("advanced"
 * serialisation) carries Buffers as they are.
 */
type Handler = (params: any) => unknown;

interface Request { kind: 'call'; id: number; method: string; params: unknown }
interface Reply { kind: 'reply'; id: number; result?: unknown; error?: string }
interface Event { kind: 'event'; name: string; data: unknown }

/** In a child: answer the parent's calls. */
export function serveIpc(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('this module runs as a forked child of a bench');
  process.on('message', (m: Request) => {
    if (m?.kind !== 'call') return;
    const handler = handlers[m.method];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`no IPC method ${m.method}`);
        return handler(m.params);
      })
      .then(
        (result) => process.send!({ kind: 'reply', id: m.id, result } satisfies Reply),
        (err: unknown) => process.send!({ kind: 'reply', id: m.id, error: err instanceof Error ? err.stack ?? err.message : String(err) } satisfies Reply),
      );
  });
  // The parent went away: nothing left to do.
  process.on('disconnect', () => process.exit(0));
}

/** In a child: tell the parent something happened. */
export function emit(name: string, data: unknown): void {
  process.send?.({ kind: 'event', name, data } satisfies Event);
}

export class Child {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Array<(data: any) => void>>();
  readonly exited: Promise<number | null>;

  private constructor(readonly name: string, readonly process: ChildProcess) {
    process.on('message', (m: Reply | Event) => {
      if (m.kind === 'reply') {
        const w = this.waiting.get(m.id);
        if (!w) return;
        this.waiting.delete(m.id);
        if (m.error !== undefined) w.reject(new Error(`${name}: ${m.error}`));
        else w.resolve(m.result);
      } else if (m.kind === 'event') {
        for (const l of this.listeners.get(m.name) ?? []) l(m.data);
      }
    });
    this.exited = new Promise((resolve) => process.once('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (code ${code}) during a call`));
      this.waiting.clear();
      resolve(code);
    }));
  }

  /** Forks `module` (a .ts file next to this one or an absolute path) under tsx. */
  static start(name: string, module: string | URL, nodeArgs: string[] = [], args: string[] = []): Child {
    const path = module instanceof URL ? fileURLToPath(module) : module;
    const child = fork(path, args, {
      execArgv: ['--import', 'tsx', ...nodeArgs],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Child(name, child);
  }

  get pid(): number {
    return this.process.pid!;
  }

  call<T = unknown>(method: string, params: unknown = {}): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.process.send({ kind: 'call', id, method, params } satisfies Request);
    });
  }

  on(event: string, listener: (data: any) => void): void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
  }

  /** Resolves with the data of the next `event`. */
  once<T = unknown>(event: string, timeoutMs = 120_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no "${event}" within ${timeoutMs} ms`)), timeoutMs);
      const list = this.listeners.get(event) ?? [];
      const listener = (data: T): void => {
        clearTimeout(timer);
        this.listeners.set(event, (this.listeners.get(event) ?? []).filter((l) => l !== listener));
        resolve(data);
      };
      list.push(listener);
      this.listeners.set(event, list);
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the child is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Stops every child on exit, Ctrl-C or an uncaught error of the orchestrator. */
export function stopChildrenOnExit(children: () => Child[]): void {
  const killAll = (): void => {
    for (const c of children()) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}
