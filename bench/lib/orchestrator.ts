import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Child, stopChildrenOnExit } from './ipc.js';

/**
 * What bench:sds and bench:xds share as orchestrators: the child processes they start (meshd
 * host, bare ceiling server, load generators), killed when the bench exits; the server flags;
 * where CPU profiles go; and how a run ends.
 */

/** The real meshd (from dist/) and the bare grpc-js ceiling. */
export const MESHD_HOST = new URL('./meshd-host.ts', import.meta.url);
export const BARE_SERVER = new URL('./bare-server.ts', import.meta.url);

/** --cpu-prof: the server processes (meshd and the bare ceiling) write V8 CPU profiles here. */
export const PROFILE_DIR = join(tmpdir(), 'meshd-bench-profiles');

export const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));

export class Children {
  private readonly started: Child[] = [];

  constructor() {
    stopChildrenOnExit(() => this.started);
  }

  start(name: string, module: URL, nodeArgs: string[] = []): Child {
    const c = Child.start(name, module, nodeArgs);
    this.started.push(c);
    return c;
  }
}

/** Node flags of both server processes, so meshd and the ceiling run alike. */
export function serverArgs(cpuProfile: boolean): string[] {
  return ['--expose-gc', ...(cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [])];
}

/** Runs the bench's main; exits 0 after it (children are killed on exit), 1 with the error. */
export function runBench(main: () => Promise<void>, cpuProfile: boolean): void {
  main().then(
    () => {
      if (cpuProfile) console.log(`\nCPU profiles of the server processes: ${PROFILE_DIR}`);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
