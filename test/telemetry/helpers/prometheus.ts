import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The real Prometheus (Debian's package: `apt-get install --no-install-recommends
 * prometheus`) on 127.0.0.1, with its own port and a temp data dir. Reusable by any
 * test that needs a scrape: point `targets` at a /metrics endpoint (host:port).
 *
 * Prometheus takes about 5 s before the first sample can be queried, even with a 1 s
 * scrape interval (its discovery manager throttles updates), so
 * `waitFor` polls.
 */

export interface PrometheusOptions {
  /** host:port of /metrics endpoints. */
  targets: string[];
  scrapeIntervalSeconds?: number;
  metricsPath?: string;
  /** Rule files to load (absolute paths). */
  ruleFiles?: string[];
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RunningPrometheus {
  url: string;
  /** An instant query through /api/v1/query; throws on an API error. */
  query(promql: string): Promise<PromSample[]>;
  /** GET a Prometheus API path, parsed JSON `data`. */
  api(path: string): Promise<unknown>;
  /** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
  waitFor<T>(check: () => Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startPrometheus(options: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-prom-'));
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    ...(options.ruleFiles?.length ? ['rule_files:', ...options.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)] : []),
    'scrape_configs:',
    '  - job_name: meshd',
    `    metrics_path: ${options.metricsPath ?? '/metrics'}`,
    '    static_configs:',
    `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  let exited = false;
  child.on('exit', () => (exited = true));

  const api = async (path: string): Promise<unknown> => {
    const res = await fetch(url + path);
    const body = (await res.json()) as { status: string; data?: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };

  const waitFor = async <T>(check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      if (exited) throw new Error(`prometheus exited:\n${output}`);
      try {
        const v = await check();
        if (v !== undefined) return v;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ''}\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  const stop = async (): Promise<void> => {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(async () => ((await fetch(`${url}/-/ready`)).ok ? true : undefined), 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    api,
    query: async (promql) => {
      const data = (await api(`/api/v1/query?query=${encodeURIComponent(promql)}`)) as { result: PromSample[] };
      return data.result;
    },
    waitFor,
    stop,
  };
}
