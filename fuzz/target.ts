import type * as fc from 'fast-check';

/**
 * A fuzz target: a decoder of untrusted bytes and its contract. `check` runs one input and
 * returns the class of outcome ("ok", or the expected error's kind); it throws
 * ContractViolation when the decoder broke its contract (an error that is not the module's
 * own, a wrong round trip), and any other exception escaping it is a finding too.
 */
export interface FuzzTarget {
  name: string;
  about: string;
  /** Valid and near-valid inputs the corpus starts from. */
  seeds(): Uint8Array[] | Promise<Uint8Array[]>;
  check(input: Uint8Array): string;
  /** Structured inputs built by fast-check, for properties such as decode(encode(x)) = x. */
  property?: { arbitrary: fc.Arbitrary<unknown>; check(value: unknown): void };
  /** Extra byte-input generators (grammar-aware pieces repeated, say) beside mutation of the corpus. */
  generators?: fc.Arbitrary<Uint8Array>[];
}

export class ContractViolation extends Error {
  override name = 'ContractViolation';
}

/** The outcome class of an error a decoder may throw, or a ContractViolation for any other. */
export function expectedError(err: unknown, ...allowed: (abstract new (...args: never[]) => Error)[]): string {
  if (allowed.some((c) => err instanceof c)) return (err as Error).name;
  const e = err as Error;
  throw new ContractViolation(`threw ${e?.name ?? typeof err}: ${e?.message ?? String(err)}`);
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
