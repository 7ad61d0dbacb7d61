/**
 * Calls made in the same turn of the event loop, run as one batch: `submit` queues an input,
 * and at the next check phase (setImmediate) up to `maxBatch` queued inputs go to `run` in
 * one call. A burst larger than that is worked off in slices, with I/O between them. The
 * wait is one turn of the loop: nothing when idle, and under load the batch is what pays.
 */
export class TurnBatcher<In, Out> {
  private queue: Array<{ input: In; resolve(out: Out): void; reject(err: unknown): void }> = [];
  private scheduled = false;

  /** `run` answers every input, in order: its result or the Error it met. */
  constructor(private readonly run: (inputs: In[]) => Promise<Array<Out | Error>>, private readonly maxBatch: number) {
    if (!(maxBatch >= 1)) throw new RangeError(`batch size must be at least 1, got ${maxBatch}`);
  }

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.queue.splice(0, this.maxBatch);
      if (this.queue.length > 0) this.schedule();
      this.run(batch.map((w) => w.input)).then(
        (results) => batch.forEach((w, i) => {
          const r = results[i];
          if (r instanceof Error) w.reject(r);
          else if (i < results.length) w.resolve(r!);
          else w.reject(new Error(`batch answered ${results.length} of ${batch.length} inputs`));
        }),
        (err: unknown) => { for (const w of batch) w.reject(err); },
      );
    });
  }
}
