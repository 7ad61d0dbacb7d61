/**
 * Whether an error from `pg` means the store could not be reached (as opposed to a query the
 * store refused): the caller then keeps serving from memory and retries later.
 */

/** Socket-level failures seen when connecting to or talking with the server. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

/**
 * SQLSTATEs (PostgreSQL docs, Appendix A): class 08 is "Connection Exception"; 57P01
 * admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up or shutting
 * down); 53300 too_many_connections.
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** What pg says when a connection ends or a timeout it enforces fires (pg and pg-pool sources). */
const PG_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed and is not queryable|the store session query timed out/;

export function isConnectionError(err: unknown): boolean {
  if (err instanceof AggregateError && err.errors.some(isConnectionError)) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && (SOCKET_CODES.has(code) || code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code))) return true;
  return PG_MESSAGES.test(err.message);
}
