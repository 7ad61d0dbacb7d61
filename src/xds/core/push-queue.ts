/**
 * Pushes waiting for connections, coalesced per connection and worked off with bounded
 * concurrency, as istiod's push queue does: a second push for a connection that is still
 * queued merges into the first (the union of types, the earliest queue time), and at most
 * `concurrency` connections are generating at once, with a turn of the event loop between
 * jobs, so a change that touches 10,000 proxies does not starve the sockets.
 */
export interface PushJob {
  /** undefined = every type the connection subscribes to. Shared between jobs: never mutated. */
  types: ReadonlySet<string> | undefined;
  reasons: ReadonlySet<string>;
  /** Clock time of the earliest push merged into this job. */
  queuedAt: number;
}

/**
 * Folds `from` into `into`: the union of types (undefined = all), every reason, the earliest
 * queue time. Never mutates a Set: one push shares its sets among every job it queues.
 */
export function mergeJob(into: PushJob, from: PushJob): void {
  if (!into.types || !from.types) into.types = undefined;
  else if (!isSubset(from.types, into.types)) into.types = new Set([...into.types, ...from.types]);
  if (!isSubset(from.reasons, into.reasons)) into.reasons = new Set([...into.reasons, ...from.reasons]);
  into.queuedAt = Math.min(into.queuedAt, from.queuedAt);
}

function isSubset(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a === b) return true;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

interface QueuedJob extends PushJob {
  /** Called once the job has run or was cancelled: one per push merged into it. */
  done: Array<() => void>;
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
    return new Promise<void>((resolve) => this.enqueueJob(key, { types: types && new Set(types), reasons: new Set([reason]), queuedAt }, resolve));
  }

  /**
   * Queues `job` (merged into the key's queued one, if any); `done` is called once it has run
   * or was cancelled. No promise per job: a push to 10,000 streams queues them in one go, on
   * the event loop, and its sets may be shared by all of them (mergeJob never mutates them).
   */
  enqueueJob(key: K, job: PushJob, done?: () => void): void {
    const queued = this.jobs.get(key);
    if (queued) {
      mergeJob(queued, job);
      if (done) queued.done.push(done);
    } else {
      this.jobs.set(key, { types: job.types, reasons: job.reasons, queuedAt: job.queuedAt, done: done ? [done] : [] });
      this.startWorkers();
    }
  }

  /** Drops a queued job (the connection closed); its waiters are released. */
  cancel(key: K): void {
    const job = this.jobs.get(key);
    if (!job) return;
    this.jobs.delete(key);
    for (const d of job.done) d();
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
        for (const d of job.done) d();
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
