/**
 * Polls `probe` until it returns something other than undefined or false, and fails naming
 * `what` once `timeoutMs` has passed. An exception from the probe fails at once (it is not
 * retried). For outcomes that arrive over real sockets and processes, where no clock can be
 * driven; nothing waits a fixed time.
 */
export async function until<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
