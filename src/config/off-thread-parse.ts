/**
 * Parsing config files on a worker thread when there is much to parse.
 *
 * The `yaml` package parses at about 1 MB/s: a file at the bounds (1 MiB, 200,000 tokens) takes
 * seconds, which on the event loop would stall every gRPC stream and delay SIGTERM. A reload
 * that parses at most `inlineMaxBytes` (8 KiB: tens of ms for the densest YAML, a few ms of
 * Istio objects; `npm run bench:config`) stays on the event loop; a larger one goes to a worker started for it. Each file's result
 * comes back as it is done and lands in the FileParseCache, from which buildSnapshot takes it
 * as if it had parsed the file itself.
 *
 * close() ends a parse in progress at once (the worker is terminated): a stopping meshd does
 * not wait for it.
 */
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../common/logger.js';
import { siblingModuleUrl, startWorker } from '../common/worker-thread.js';
import { unreadFile, type ConfigFile, type FileParseCache, type FileResult } from './build-snapshot.js';

export interface ConfigParser {
  /** Parse the files the cache does not hold and put them in it. */
  parseInto(files: readonly ConfigFile[], cache: FileParseCache): Promise<void>;
  close(): void;
}

export const INLINE_PARSE_MAX_BYTES = 8 * 1024;

/**
 * The worker's heap: a file within the YAML bounds needs ~200 MB at most; this stops a
 * parse that would need more (a bug, or a bound set too high) before it costs the process.
 */
const WORKER_HEAP_MB = 512;

const WORKER_URL = siblingModuleUrl('parse-worker', import.meta.url);

export class ConfigParseAborted extends Error {
  constructor() {
    super('config parse aborted: the config watcher is stopping');
    this.name = 'ConfigParseAborted';
  }
}

/** What the worker posts: one file's result, or the end of the batch. */
export type ParseWorkerMessage = { index: number; result: FileResult } | { done: true };

export interface OffThreadParserOptions {
  logger: Logger;
  inlineMaxBytes?: number;
  /** Tests: another worker module. */
  workerUrl?: URL;
}

export class OffThreadParser implements ConfigParser {
  private worker: Worker | undefined;
  private closed = false;
  /** Batches parsed on a worker (tests and logs). */
  workerBatches = 0;

  constructor(private readonly options: OffThreadParserOptions) {}

  async parseInto(files: readonly ConfigFile[], cache: FileParseCache): Promise<void> {
    let pending = files.filter((f) => f.text !== undefined && cache.get(f) === undefined);
    const bytes = pending.reduce((n, f) => n + f.text!.length, 0);
    if (bytes <= (this.options.inlineMaxBytes ?? INLINE_PARSE_MAX_BYTES)) return;
    this.options.logger.info({ files: pending.length, bytes }, 'parsing config on a worker thread');
    while (pending.length > 0) {
      const parsed = await this.batch(pending, cache);
      pending = pending.slice(parsed);
    }
  }

  /**
   * One worker for `files`; resolves with how many of them now have a result (in order). A
   * worker that dies (out of its heap) costs the file it was on an error; the next batch
   * goes on with the rest.
   */
  private batch(files: readonly ConfigFile[], cache: FileParseCache): Promise<number> {
    if (this.closed) return Promise.reject(new ConfigParseAborted());
    this.workerBatches++;
    const worker = startWorker(this.options.workerUrl ?? WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
    this.worker = worker;
    let parsed = 0;
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        if (this.worker === worker) this.worker = undefined;
        void worker.terminate();
        fn();
      };
      const failed = (reason: string): void => settle(() => {
        if (this.closed) return reject(new ConfigParseAborted());
        const f = files[parsed]!;
        this.options.logger.error({ file: f.path, err: reason }, 'config parse worker failed');
        cache.set(f, unreadFile(f.path, `cannot parse file: ${reason}`));
        resolve(parsed + 1);
      });
      worker.on('message', (m: ParseWorkerMessage) => {
        if ('done' in m) return settle(() => resolve(parsed));
        const f = files[m.index];
        if (f === undefined || m.index !== parsed) return failed('the parse worker answered out of order');
        cache.set(f, revive(m.result));
        parsed++;
      });
      worker.on('error', (err) => failed(err.message));
      worker.on('exit', (code) => failed(`the parse worker exited with code ${code}`));
      worker.postMessage({ files: files.map((f) => ({ path: f.path, text: f.text })) });
    });
  }

  /** Ends a parse in progress; parseInto then rejects with ConfigParseAborted. */
  close(): void {
    this.closed = true;
    void this.worker?.terminate();
  }
}

/** A result that crossed the thread boundary: its objects frozen again, as parsing leaves them. */
function revive(r: FileResult): FileResult {
  for (const e of r.entries) if (e.resource) Object.freeze(e.resource);
  return r;
}

