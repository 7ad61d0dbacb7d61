/**
 * Calls made close together, run as batches: `submit` queues an input, and up to `maxBatch`
 * queued inputs go to `run` in one call.
 *
 * - A full batch runs at once (at the next microtask checkpoint). A fleet connecting at once
 *   arrives as one long poll phase of the event loop (10,000 streams' first requests were read
 *   in ~1 s); waiting for its end left every proxy half set up, its request, promises and
 *   closures surviving into the old generation, and nothing answered until all were accepted.
 * - A partial batch waits for the check phase (setImmediate): one turn of the loop, nothing
 *   when idle, and under load the batch is what pays.
 * - A burst queued in one go (more than a batch before any microtask runs) is worked off one
 *   batch per turn, with I/O between, so the event loop is never held for the whole burst.
 */
export class TurnBatcher<In, Out> {
  private queue: Array<{ input: In; resolve(out: Out): void; reject(err: unknown): void }> = [];
  private scheduled = false;
  private fullBatchPending = false;

  /** `run` answers every input, in order: its result or the Error it met. */
  constructor(private readonly run: (inputs: In[]) => Promise<Array<Out | Error>>, private readonly maxBatch: number) {
    if (!(maxBatch >= 1)) throw new RangeError(`batch size must be at least 1, got ${maxBatch}`);
  }

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.runFullBatchSoon();
      else this.schedule();
    });
  }

  private runFullBatchSoon(): void {
    if (this.fullBatchPending) return;
    this.fullBatchPending = true;
    queueMicrotask(() => {
      this.fullBatchPending = false;
      if (this.queue.length >= this.maxBatch) this.runBatch();
      if (this.queue.length > 0) this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.queue.length === 0) return;
      this.runBatch();
      if (this.queue.length > 0) this.schedule();
    });
  }

  private runBatch(): void {
    const batch = this.queue.splice(0, this.maxBatch);
    this.run(batch.map((w) => w.input)).then(
      (results) => batch.forEach((w, i) => {
        const r = results[i];
        if (r instanceof Error) w.reject(r);
        else if (i < results.length) w.resolve(r!);
        else w.reject(new Error(`batch answered ${results.length} of ${batch.length} inputs`));
      }),
      (err: unknown) => { for (const w of batch) w.reject(err); },
    );
  }
}
