/**
 * Time is passed in, never read from globals in policy code, so rotation and expiry
 * logic can be tested with a fake clock (as SPIRE does).
 */
export interface Clock {
  now(): number; // milliseconds since the epoch
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock the tests move by hand. */
export class ManualClock implements Clock {
  constructor(private ms: number = Date.UTC(2026, 10, 22, 12, 0, 0)) {}
  now(): number { return this.ms; }
  advance(ms: number): void { this.ms += ms; }
  set(ms: number): void { this.ms = ms; }
}
