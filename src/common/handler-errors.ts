import { Counter, type Registry } from 'prom-client';
import type { Logger } from './logger.js';
import { systemClock, type Clock } from './clock.js';
import { clip } from '../xds/core/limits.js';

export const HANDLER_ERRORS_METRIC = 'meshd_handler_errors_total';

/** After a handler's first logged error, at most one more line per handler per minute (with how many were not logged). */
export const HANDLER_ERROR_LOG_INTERVAL_MS = 60_000;

const MAX_MESSAGE_CHARS = 200;
const MAX_STACK_CHARS = 4000;

export interface HandlerErrorsOptions {
  logger: Logger;
  /** Where meshd_handler_errors_total is registered; without one the count is kept but not exported. */
  registry?: Registry;
  clock?: Clock;
}

/**
 * Unexpected errors of request handlers (HTTP routes, gRPC methods): a bug, or a dependency
 * failing, never a client's bad input, which gets its own precise refusal. Each is answered
 * as an internal error by the caller, counted in meshd_handler_errors_total{server,handler},
 * and logged: the first of each handler with its stack, then at most one line per handler
 * per interval saying how many were not logged, so a client that can trigger one cannot
 * flood the log. Handler names come from code (routes, gRPC method paths), so both the
 * label values and the map below are bounded.
 */
export class HandlerErrors {
  private readonly counter: Counter<'server' | 'handler'>;
  private readonly logged = new Map<string, { at: number; suppressed: number }>();
  private readonly logger: Logger;
  private readonly clock: Clock;

  constructor(options: HandlerErrorsOptions) {
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    const existing = options.registry?.getSingleMetric(HANDLER_ERRORS_METRIC);
    this.counter = existing instanceof Counter ? existing as Counter<'server' | 'handler'> : new Counter({
      name: HANDLER_ERRORS_METRIC,
      help: 'Unexpected errors in request handlers, answered as HTTP 500 or gRPC INTERNAL; server is monitoring, grpc or process, handler the route or gRPC method.',
      labelNames: ['server', 'handler'],
      registers: options.registry ? [options.registry] : [],
    });
  }

  /** Shows a handler's count as 0 before its first error, so a rate or an alert on it has a series to read. */
  declare(server: string, handler: string): void {
    this.counter.inc({ server, handler }, 0);
  }

  /**
   * Counts and (boundedly) logs one error of `handler` on `server`; returns what the answer
   * may say about it: the error's first line, cut, never its stack.
   */
  report(server: string, handler: string, err: unknown, context: Record<string, unknown> = {}): string {
    this.counter.inc({ server, handler });
    const key = `${server} ${handler}`;
    const now = this.clock.now();
    const last = this.logged.get(key);
    if (last === undefined || now - last.at >= HANDLER_ERROR_LOG_INTERVAL_MS) {
      this.logger.error({ server, handler, ...context, notLogged: last?.suppressed ?? 0, error: describe(err) },
        'unexpected error in a request handler; answered as an internal error');
      this.logged.set(key, { at: now, suppressed: 0 });
    } else {
      last.suppressed += 1;
    }
    return firstLine(err);
  }
}

function firstLine(err: unknown): string {
  return clip(text(err).split('\n', 1)[0]!, MAX_MESSAGE_CHARS);
}

function describe(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: clip(text(err), MAX_MESSAGE_CHARS) };
  return { type: err.name, message: clip(err.message, MAX_MESSAGE_CHARS), stack: clip(err.stack ?? '', MAX_STACK_CHARS) };
}

/** Whatever was thrown, as text; a thrown object without toString (Object.create(null)) must not throw again here. */
function text(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return String(err);
  } catch {
    return 'a value that cannot be printed was thrown';
  }
}
