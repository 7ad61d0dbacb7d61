import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { createLogger } from '../../src/common/logger.js';
import { HandlerErrors } from '../../src/common/handler-errors.js';
import { addGuardedService } from '../../src/common/guarded-service.js';

/**
 * A gRPC service registered through addGuardedService: an error in a handler, in a listener
 * of its call, or in the promise it returns, ends that call with INTERNAL and is counted; the
 * process and every other call go on. Without the guard, the listener cases are uncaught
 * exceptions in grpc-js's HTTP/2 callbacks and end this test process.
 */

const logs: Array<Record<string, any>> = [];
const logger = createLogger({
  destination: new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  }),
});
const registry = new Registry();
const errors = new HandlerErrors({ logger, registry });

const bytes = (b: Buffer): Buffer => b;
const SERVICE = 'meshd.test.Fragile';
function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return { path: `/${SERVICE}/${name}`, originalName: name, requestStream, responseStream, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes };
}
const definition: grpc.ServiceDefinition = {
  Unary: method('Unary', false, false),
  Collect: method('Collect', true, false),
  Chat: method('Chat', true, true),
  Watch: method('Watch', false, true),
};

/** What each handler does with a request, chosen by its first byte. */
const closedChats: string[] = [];
const boom = (where: string) => new TypeError(`boom in ${where}`);
const implementation: grpc.UntypedServiceImplementation = {
  Unary(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
    const how = call.request.toString();
    if (how === 'throw') throw boom('unary handler');
    if (how === 'reject') return Promise.reject(boom('unary promise'));
    if (how === 'reject-after-answer') { callback(null, Buffer.from('answered')); return Promise.reject(boom('late')); }
    callback(null, Buffer.from(`echo ${how}`));
    return undefined;
  },
  Collect(call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
    const seen: string[] = [];
    call.on('data', (m: Buffer) => {
      if (m.toString() === 'throw') throw boom('client-stream data listener');
      seen.push(m.toString());
    });
    call.on('end', () => callback(null, Buffer.from(seen.join(','))));
  },
  Chat(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
    const id = call.metadata.get('chat-id')[0] as string;
    call.on('data', (m: Buffer) => {
      if (m.toString() === 'throw') throw boom('bidi data listener');
      if (m.toString() === 'throw-later') { setImmediate(() => call.emit('tick')); return; }
      call.write(Buffer.from(`echo ${m.toString()}`));
    });
    call.on('tick', () => { throw boom('bidi listener run from a timer'); });
    call.on('end', () => { throw boom('bidi end listener'); });
    call.on('close', () => closedChats.push(id));
  },
  Watch(call: grpc.ServerWritableStream<Buffer, Buffer>) {
    if (call.request.toString() === 'throw') throw boom('server-stream handler');
    call.write(Buffer.from('one'));
    call.end();
  },
};

const server = new grpc.Server();
addGuardedService(server, definition, implementation, errors);
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
const Client = grpc.makeGenericClientConstructor(definition, SERVICE);
const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
t.teardown(() => { client.close(); server.forceShutdown(); });

function unary(request: string): Promise<{ err: grpc.ServiceError | null; value?: string }> {
  return new Promise((resolve) => client.Unary(Buffer.from(request), (err: grpc.ServiceError | null, value?: Buffer) => resolve({ err, value: value?.toString() })));
}

async function count(name: string): Promise<number> {
  const { values } = await registry.getSingleMetric('meshd_handler_errors_total')!.get();
  return values.find((v) => v.labels.server === 'grpc' && v.labels.handler === `/${SERVICE}/${name}`)?.value ?? -1;
}

/** Collects a bidi call's messages and its status. */
function chat(id: string, messages: string[], halfClose: boolean): Promise<{ received: string[]; status: grpc.StatusObject }> {
  const md = new grpc.Metadata();
  md.set('chat-id', id);
  const call = client.Chat(md) as grpc.ClientDuplexStream<Buffer, Buffer>;
  const received: string[] = [];
  call.on('data', (m: Buffer) => received.push(m.toString()));
  call.on('error', () => undefined);
  const done = new Promise<{ received: string[]; status: grpc.StatusObject }>((resolve) => call.on('status', (status) => resolve({ received, status })));
  for (const m of messages) call.write(Buffer.from(m));
  if (halfClose) call.end();
  return done;
}

t.test('every method starts with a zero series', async (t) => {
  for (const name of ['Unary', 'Collect', 'Chat', 'Watch']) t.equal(await count(name), 0, name);
});

t.test('unary: a throw or a rejected promise is INTERNAL with a short message; an answer already sent stands', async (t) => {
  const thrown = await unary('throw');
  t.equal(thrown.err?.code, grpc.status.INTERNAL, 'not grpc-js\'s UNKNOWN');
  t.equal(thrown.err?.details, 'meshd internal error: boom in unary handler');
  const rejected = await unary('reject');
  t.equal(rejected.err?.code, grpc.status.INTERNAL);
  const late = await unary('reject-after-answer');
  t.equal(late.value, 'answered');
  t.equal(await count('Unary'), 3, 'all three counted');
  t.equal((await unary('fine')).value, 'echo fine');
});

t.test('client streaming: a throw in the data listener is INTERNAL, and the server keeps serving', async (t) => {
  const status = await new Promise<grpc.ServiceError | null>((resolve) => {
    const call = client.Collect((err: grpc.ServiceError | null) => resolve(err)) as grpc.ClientWritableStream<Buffer>;
    call.write(Buffer.from('a'));
    call.write(Buffer.from('throw'));
    call.end();
  });
  t.equal(status?.code, grpc.status.INTERNAL);
  t.match(status?.details, /boom in client-stream data listener/);
  t.equal(await count('Collect'), 1);
  const fine = await new Promise<string | undefined>((resolve) => {
    const call = client.Collect((_err: unknown, v?: Buffer) => resolve(v?.toString())) as grpc.ClientWritableStream<Buffer>;
    call.write(Buffer.from('x'));
    call.write(Buffer.from('y'));
    call.end();
  });
  t.equal(fine, 'x,y');
});

t.test('bidi: a throw in a data listener ends the call with INTERNAL and the handler sees it close', async (t) => {
  const r = await chat('a', ['hello', 'throw'], false);
  t.same(r.received, ['echo hello'], 'what was written before the error is delivered');
  t.equal(r.status.code, grpc.status.INTERNAL);
  t.equal(r.status.details, 'meshd internal error: boom in bidi data listener');
  await waitFor(() => closedChats.includes('a'), 'the handler\'s close listener');
});

t.test('bidi: a throw in a listener run later (a timer, the end of the input) is caught too', async (t) => {
  const later = await chat('b', ['throw-later'], false);
  t.equal(later.status.code, grpc.status.INTERNAL);
  t.match(later.status.details, /from a timer/);
  const ended = await chat('c', ['x'], true);
  t.equal(ended.status.code, grpc.status.INTERNAL);
  t.match(ended.status.details, /bidi end listener/);
  t.equal(await count('Chat'), 3);
});

t.test('server streaming: a throw in the handler is INTERNAL', async (t) => {
  const status = await new Promise<grpc.StatusObject>((resolve) => {
    const call = client.Watch(Buffer.from('throw')) as grpc.ClientReadableStream<Buffer>;
    call.on('error', () => undefined);
    call.on('status', resolve);
  });
  t.equal(status.code, grpc.status.INTERNAL);
  t.equal(await count('Watch'), 1);
});

t.test('each error is counted; the log has one line per handler', async (t) => {
  const lines = logs.filter((l) => l.msg === 'unexpected error in a request handler; answered as an internal error');
  t.same(lines.map((l) => l.handler).sort(), [`/${SERVICE}/Chat`, `/${SERVICE}/Collect`, `/${SERVICE}/Unary`, `/${SERVICE}/Watch`]);
  for (const l of lines) t.equal(l.server, 'grpc');
});

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
