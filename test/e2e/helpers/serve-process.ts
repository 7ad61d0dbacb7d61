import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { meshdCommand } from '../../helpers/meshd-cli.js';

export interface ServeProcess {
  child: ChildProcess;
  ports: { secureGrpc: number; grpc: number; monitoring: number };
  logs: Array<Record<string, unknown>>;
  /** SIGTERM, then the exit code and how long the exit took. */
  terminate(): Promise<{ code: number | null; ms: number }>;
}

/** Runs `meshd serve` as its own process (as `npm start` does) on ephemeral loopback ports. */
export async function startServeProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(...meshdCommand(['serve',
    '--secure-grpc-addr', '127.0.0.1:0', '--grpc-addr', '127.0.0.1:0', '--monitoring-addr', '127.0.0.1:0', ...args]), {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const ports = await new Promise<ServeProcess['ports']>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'meshd is serving') {
          const port = (k: string) => Number(String(entry[k]).split(':').pop());
          resolve({ secureGrpc: port('secureGrpc'), grpc: port('grpc'), monitoring: port('monitoring') });
        }
      } catch { /* not a log line */ }
    });
    child.once('exit', (code) => reject(new Error(`meshd serve exited with ${code} before serving:\n${stderr}`)));
  });
  return {
    child, ports, logs,
    terminate: () => new Promise((resolve) => {
      const started = Date.now();
      child.once('exit', (code) => resolve({ code, ms: Date.now() - started }));
      child.kill('SIGTERM');
    }),
  };
}

/** Runs a meshd command to completion. */
export function runMeshd(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(...meshdCommand(args), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
