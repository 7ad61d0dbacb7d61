/**
 * Pushes waiting for connections, coalesced per connection and worked off with bounded
 * concurrency, as istiod's push queue does: a second push for a connection that is still
 * queued merges into the first (the union of types, the earliest queue time), and at most
 * `concurrency` connections are generating at once, with a turn of the event loop between
 * jobs, so a change that touches 10,000 proxies does not starve the sockets.
 */
export interface PushJob {
  /** undefined = every type the connection subscribes to. */
  types: Set<string> | undefined;
  reasons: Set<string>;
  /** Clock time of the earliest push merged into this job. */
  queuedAt: number;
}

/** Folds `from` into `into`: the union of types (undefined = all), every reason, the earliest queue time. */
export function mergeJob(into: PushJob, from: PushJob): void {
  if (into.types && from.types) for (const t of from.types) into.types.add(t);
  else into.types = undefined;
  for (const r of from.reasons) into.reasons.add(r);
  into.queuedAt = Math.min(into.queuedAt, from.queuedAt);
}

interface QueuedJob extends PushJob {
  waiters: Array<() => void>;
}

/** CPU a turn of the event loop gives to pushes before I/O gets its turn. */
const SLICE_MS = 10;

export class PushQueue<K> {
  private readonly jobs = new Map<K, QueuedJob>();
  private active = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly run: (key: K, job: PushJob) => Promise<void>,
  ) {
    if (!(concurrency >= 1)) throw new RangeError(`push concurrency must be at least 1, got ${concurrency}`);
  }

  /** Resolves when the job this push joined has run (never rejects). */
  enqueue(key: K, types: ReadonlySet<string> | undefined, reason: string, queuedAt: number): Promise<void> {
    return this.enqueueJob(key, { types: types && new Set(types), reasons: new Set([reason]), queuedAt });
  }

  /** enqueue() for a job already built (one held back and merged elsewhere); the queue owns it now. */
  enqueueJob(key: K, job: PushJob): Promise<void> {
    return new Promise<void>((resolve) => {
      const queued = this.jobs.get(key);
      if (queued) {
        mergeJob(queued, job);
        queued.waiters.push(resolve);
      } else {
        this.jobs.set(key, { ...job, waiters: [resolve] });
        this.startWorkers();
      }
    });
  }

  /** Drops a queued job (the connection closed); its waiters are released. */
  cancel(key: K): void {
    const job = this.jobs.get(key);
    if (!job) return;
    this.jobs.delete(key);
    for (const w of job.waiters) w();
    this.checkIdle();
  }

  get queued(): number {
    return this.jobs.size;
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.jobs.size === 0 && this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private startWorkers(): void {
    while (this.active < this.concurrency && this.active < this.jobs.size) {
      this.active += 1;
      void this.work();
    }
  }

  /** Start of the current slice of the event loop's check phase that workers share. */
  private sliceStart = 0;
  private markerQueued = false;

  /**
   * Waits for a later turn of the event loop when this turn already ran SLICE_MS of jobs.
   * Every worker's setImmediate fires in the same check phase, so a per-worker yield alone
   * still runs `concurrency` jobs back to back; a marker queued ahead of the parked workers
   * opens the next slice (immediates run in FIFO order), and I/O runs between slices.
   */
  private async turn(): Promise<void> {
    if (performance.now() - this.sliceStart < SLICE_MS) return;
    for (;;) {
      if (!this.markerQueued) {
        this.markerQueued = true;
        setImmediate(() => { this.markerQueued = false; this.sliceStart = performance.now(); });
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (performance.now() - this.sliceStart < SLICE_MS) return;
    }
  }

  private async work(): Promise<void> {
    try {
      for (;;) {
        const next = this.jobs.entries().next();
        if (next.done) break;
        const [key, job] = next.value;
        this.jobs.delete(key);
        try {
          await this.run(key, job);
        } catch {
          // run() reports its own failures; a worker must survive them.
        }
        for (const w of job.waiters) w();
        // Let I/O (incoming ACKs, other sockets) through once this turn has run its share of jobs.
        await this.turn();
      }
    } finally {
      this.active -= 1;
      this.checkIdle();
    }
  }

  private checkIdle(): void {
    if (this.jobs.size !== 0 || this.active !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
