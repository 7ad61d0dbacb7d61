/**
 * What can go wrong with the shared store, each kind its own class so a caller can keep
 * serving from memory on `StoreUnavailableError` and stop start-up on the others.
 */

/**
 * The store could not be reached (refused, reset, timed out, shut down). `outcome` says what
 * became of a write: 'unchanged' when the connection failed before COMMIT was sent (PostgreSQL
 * rolls back a transaction whose session ends), 'unknown' when it failed while committing.
 */
export class StoreUnavailableError extends Error {
  constructor(readonly outcome: 'unchanged' | 'unknown' | 'read', cause: unknown) {
    super(`the store is unreachable: ${describeCause(cause)}; ${OUTCOME_TEXT[outcome]}`, { cause });
    this.name = 'StoreUnavailableError';
  }
}

const OUTCOME_TEXT = {
  unchanged: 'nothing was changed',
  unknown: 'the connection was lost while committing, so the change may or may not have been saved: read the store again before retrying',
  read: 'serving what was last read',
} as const;

/** The database's schema cannot be used by this meshd (newer than it knows, or a failed migration). */
export class StoreSchemaError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreSchemaError';
  }
}

/** The key-encryption key is missing, unsafe, malformed, or not the one the store's keys were sealed with. */
export class StoreKeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreKeyError';
  }
}

/** A value the store refuses to hold (a bad name, a NUL byte, an oversized document); nothing was written. */
export class StoreInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreInputError';
  }
}

/** A once-only write by a replica that is no longer the leader; nothing was written. */
export class NotLeaderError extends Error {
  constructor(readonly heldTerm: number, readonly currentTerm: number) {
    super(`this replica's leadership (term ${heldTerm}) has ended; term ${currentTerm} leads now; nothing was changed`);
    this.name = 'NotLeaderError';
  }
}

export function describeCause(cause: unknown): string {
  if (cause instanceof AggregateError && cause.errors.length > 0) return describeCause(cause.errors[0]);
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    const message = cause.message || cause.name;
    return code && !message.includes(code) ? `${message} (${code})` : message;
  }
  return String(cause);
}
