import type { EventEmitter } from 'node:events';
import { status, type MethodDefinition, type Server, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HandlerErrors } from './handler-errors.js';

/**
 * Registers a gRPC service whose every method is guarded, so that no error in a handler can
 * end the process. grpc-js itself catches only a synchronous throw from the handler function
 * (and answers UNKNOWN, unlogged); a throw inside a listener of the call ('data', 'end',
 * 'drain', …) propagates into grpc-js's HTTP/2 callbacks and is an uncaught exception, and a
 * handler returning a rejected promise is an unhandled rejection. Here all three are answered
 * with INTERNAL and a short message, counted and logged through HandlerErrors (label server
 * "grpc", handler the method path). The handler's own cleanup still runs: once the status is
 * sent grpc-js reports the call cancelled and closed, as for any ended call.
 */
export function addGuardedService(server: Server, definition: ServiceDefinition, implementation: UntypedServiceImplementation, errors: HandlerErrors): void {
  const guarded: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition) as Array<[string, MethodDefinition<unknown, unknown>]>) {
    // grpc-js looks a method up by its name, then by its originalName.
    const handler = implementation[name] ?? (method.originalName !== undefined ? implementation[method.originalName] : undefined);
    if (handler === undefined) continue;
    guarded[name] = guard(method, handler as AnyHandler, errors);
    errors.declare('grpc', method.path);
  }
  server.addService(definition, guarded);
}

type AnyHandler = (...args: unknown[]) => unknown;
type Callback = (err: unknown, value?: unknown, trailer?: unknown, flags?: unknown) => void;
interface GuardedCall extends EventEmitter {
  writableEnded?: boolean;
  destroyed?: boolean;
}

function guard(method: MethodDefinition<unknown, unknown>, handler: AnyHandler, errors: HandlerErrors): AnyHandler {
  const path = method.path;
  if (!method.responseStream) {
    // Unary and client streaming: the answer goes through the callback, once.
    return (call: unknown, callback: unknown) => {
      let answered = false;
      const respond: Callback = (...args) => {
        if (answered) return;
        answered = true;
        (callback as Callback)(...args);
      };
      const fail = (err: unknown): void => {
        const details = `meshd internal error: ${errors.report('grpc', path, err)}`;
        respond({ code: status.INTERNAL, details, message: details, name: 'Error' });
      };
      run(call as GuardedCall, fail, () => handler(call, respond));
    };
  }
  // Server streaming and bidi: the status goes out as an 'error' carrying a code.
  return (call: unknown) => {
    const stream = call as GuardedCall;
    let failed = false;
    const fail = (err: unknown): void => {
      const details = `meshd internal error: ${errors.report('grpc', path, err)}`;
      if (failed || stream.writableEnded || stream.destroyed) return;
      failed = true;
      stream.emit('error', Object.assign(new Error(details), { code: status.INTERNAL, details }));
    };
    run(stream, fail, () => handler(call));
  };
}

function run(call: GuardedCall, fail: (err: unknown) => void, invoke: () => unknown): void {
  guardListeners(call, fail);
  try {
    const result = invoke();
    if (isThenable(result)) result.then(undefined, fail);
  } catch (err) {
    fail(err);
  }
}

/**
 * Every event of the call goes through its own emit; wrapping that one function catches a
 * throw from any listener the handler adds, whenever it runs, without touching the listeners.
 */
function guardListeners(call: GuardedCall, fail: (err: unknown) => void): void {
  const emit = call.emit;
  call.emit = function guardedEmit(this: EventEmitter, event: string | symbol, ...args: unknown[]): boolean {
    try {
      return emit.call(this, event, ...args);
    } catch (err) {
      fail(err);
      return true;
    }
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
