import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import type { Logger } from '../common/logger.js';
import { siblingModuleUrl, startWorker } from '../common/worker-thread.js';
import type { KeyType } from './keys.js';
import type { LeafJob, LeafOutcome } from './leaf-mint.js';
import type { IssuerInfo } from './templates.js';

/**
 * Mint workers: P-256 leaf issuance (key pair, template, signature, read-back validation,
 * PEM: ~80 µs of CPU a leaf) on worker threads, when the signing key is held in this process.
 *
 * Why: a fleet connecting at once reaches meshd as one long poll phase of the event loop
 * (10,000 streams' first requests read in ~1 s), and on the event loop every signature waited
 * for that phase to end and then competed with answering the streams. On a worker, leaves are
 * minted while the event loop is still accepting streams, on another core.
 *
 * A batch goes to a worker the moment it is submitted (one message a batch, not a leaf).
 * While no worker is online (at start, or after one died and is being replaced) the issuer
 * mints inline: a request never waits for a thread to start. An external signer is always
 * called from the main thread.
 */

export interface MintRequest {
  kind: 'mint';
  seq: number;
  context: number;
  now: number;
  jobs: Array<Omit<LeafJob, 'spki'>>;
}

export type MintWorkerMessage =
  | { kind: 'context'; id: number; key: KeyObject; keyType: KeyType; issuer: IssuerInfo; trustDomain: string }
  | MintRequest;

export type MintReply =
  | { seq: number; results: Array<{ outcome: LeafOutcome; keyPem: string }>; error?: undefined }
  | { seq: number; error: string; results?: undefined };

/** What a worker needs to sign for one signing certificate. */
export interface SigningContext {
  key: KeyObject;
  keyType: KeyType;
  issuer: IssuerInfo;
  trustDomain: string;
}

/** One worker per core beyond the first (the event loop keeps that one), at most 4. */
export function defaultMintWorkers(): number {
  return Math.max(0, Math.min(4, availableParallelism() - 1));
}

/** The worker module next to this one. */
const WORKER_URL = siblingModuleUrl('mint-worker', import.meta.url);

const MAX_FAILURES_IN_A_ROW = 5;

interface PoolWorker {
  worker: Worker;
  online: boolean;
  contexts: Set<number>;
  waiting: Map<number, { resolve(r: Array<{ outcome: LeafOutcome; keyPem: string }>): void; reject(e: Error): void }>;
}

export class MintPool {
  private readonly workers: PoolWorker[] = [];
  private readonly contextIds = new WeakMap<object, number>();
  private nextContext = 1;
  private nextSeq = 1;
  private closed = false;
  /** Workers lost since one last answered a batch: a worker that cannot start is not restarted forever. */
  private failuresInARow = 0;
  private readonly workerUrl: URL;
  /** Batches and leaves the workers answered (tests read them to know the workers did the work). */
  readonly minted = { batches: 0, leaves: 0 };

  /** `workerUrl` is for tests (a worker that misbehaves); meshd always runs mint-worker. */
  constructor(readonly size: number, private readonly logger: Logger, options: { workerUrl?: URL } = {}) {
    this.workerUrl = options.workerUrl ?? WORKER_URL;
    for (let i = 0; i < size; i++) this.spawn();
  }

  /** True when a worker can take a batch now; otherwise the caller mints inline. */
  get ready(): boolean {
    return !this.closed && this.workers.some((w) => w.online);
  }

  /**
   * Mints a batch on the least busy worker. `owner` identifies the signing context (the
   * signer object): a worker is sent the key once per signer, not with every batch.
   */
  mint(owner: object, context: () => SigningContext, now: number, jobs: Array<Omit<LeafJob, 'spki'>>): Promise<Array<{ outcome: LeafOutcome; keyPem: string }>> {
    const online = this.workers.filter((w) => w.online);
    if (this.closed || online.length === 0) return Promise.reject(new Error('no mint worker is online'));
    const w = online.reduce((a, b) => (b.waiting.size < a.waiting.size ? b : a));
    let id = this.contextIds.get(owner);
    if (id === undefined) this.contextIds.set(owner, (id = this.nextContext++));
    if (!w.contexts.has(id)) {
      w.worker.postMessage({ kind: 'context', id, ...context() } satisfies MintWorkerMessage);
      w.contexts.add(id);
    }
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      if (w.waiting.size === 0) w.worker.ref(); // a batch in flight keeps the process alive; an idle pool does not
      w.waiting.set(seq, { resolve, reject });
      w.worker.postMessage({ kind: 'mint', seq, context: id, now, jobs } satisfies MintWorkerMessage);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new Error('the mint pool closed');
    await Promise.all(this.workers.splice(0).map((w) => {
      for (const waiter of w.waiting.values()) waiter.reject(error);
      w.waiting.clear();
      return w.worker.terminate();
    }));
  }

  private spawn(): void {
    const worker = startWorker(this.workerUrl);
    worker.unref(); // an idle pool never keeps the process alive
    const w: PoolWorker = { worker, online: false, contexts: new Set(), waiting: new Map() };
    worker.on('online', () => { w.online = true; });
    worker.on('message', (reply: MintReply) => {
      const waiter = w.waiting.get(reply.seq);
      if (!waiter) return;
      w.waiting.delete(reply.seq);
      if (w.waiting.size === 0) worker.unref();
      if (reply.results) {
        this.failuresInARow = 0;
        this.minted.batches += 1;
        this.minted.leaves += reply.results.length;
        waiter.resolve(reply.results);
      } else {
        waiter.reject(new Error(`mint worker: ${reply.error}`));
      }
    });
    const lost = (why: string): void => {
      const i = this.workers.indexOf(w);
      if (i === -1) return;
      this.workers.splice(i, 1);
      const error = new Error(`mint worker ${why}`);
      const inFlight = w.waiting.size;
      for (const waiter of w.waiting.values()) waiter.reject(error);
      w.waiting.clear();
      if (this.closed) return;
      this.failuresInARow += 1;
      if (this.failuresInARow >= MAX_FAILURES_IN_A_ROW) {
        this.logger.error({ reason: why, inFlight, failures: this.failuresInARow }, 'mint workers keep failing; leaves are minted on the event loop from now on');
        return;
      }
      this.logger.error({ reason: why, inFlight }, 'mint worker lost; starting another (leaves are minted inline meanwhile)');
      this.spawn();
    };
    worker.on('error', (e) => lost(`failed: ${e.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    this.workers.push(w);
  }
}
