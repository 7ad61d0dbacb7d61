import t, { type Test as Tap } from 'tap';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { createLogger } from '../../src/common/logger.js';
import { ManualClock } from '../../src/common/clock.js';
import { HANDLER_ERROR_LOG_INTERVAL_MS, HandlerErrors } from '../../src/common/handler-errors.js';
import { parseRequestTarget, startHttpServer, type HttpHandler } from '../../src/server/http-server.js';
import { getTarget, HOSTILE_TARGETS, rawHttp } from './helpers/raw-http.js';

/** The HTTP server behind meshd's monitoring port: every request is answered, none ends the process. */

const logs: Array<Record<string, any>> = [];
const logger = createLogger({
  level: 'debug',
  destination: new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  }),
});
const registry = new Registry();
const clock = new ManualClock();
const errors = new HandlerErrors({ logger, registry, clock });

let failWith: unknown;
const routes = new Map<string, HttpHandler>([
  ['/healthz', () => ({ body: 'ok\n' })],
  ['/echo', (url) => ({ body: `${url.pathname}?${url.searchParams.get('q') ?? ''}\n` })],
  ['/throws', () => { throw failWith; }],
  ['/rejects', async () => { throw failWith; }],
  ['/bad-header', () => ({ contentType: 'text/plain\r\nx-injected: 1', body: 'never sent\n' })],
]);
const http = await startHttpServer('127.0.0.1', 0, routes, { name: 'monitoring', logger, errors });
t.teardown(() => http.close());

async function count(handler: string): Promise<number> {
  const { values } = await registry.getSingleMetric('meshd_handler_errors_total')!.get();
  return values.find((v) => v.labels.server === 'monitoring' && v.labels.handler === handler)?.value ?? -1;
}

async function stillServing(t: Tap): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${http.port}/healthz`);
  t.equal(r.status, 200, 'the server still answers /healthz');
}

t.test('request targets WHATWG URL cannot parse get an answer, and the server keeps serving', async (t) => {
  const expected: Record<string, number> = {
    // Origin-form: the whole target is a path (RFC 9112 §3.2.1), "//[" included; no such endpoint.
    '//[': 404, '//a:b:c': 404, '//%zz': 404, '//[::1': 404,
    // Absolute-form that is no URL, and the asterisk-form (OPTIONS only): not a target meshd serves.
    'http://[': 400, 'http://a:b:c/': 400, '*': 400,
  };
  t.same(Object.keys(expected).sort(), [...HOSTILE_TARGETS].sort(), 'every hostile target has an expectation');
  for (const target of HOSTILE_TARGETS) {
    const r = await getTarget(http.port, target);
    t.equal(r.status, expected[target], `GET ${target} → ${expected[target]}`);
  }
  t.equal(await count('(request)'), 0, 'a hostile target is the client\'s error, not an internal one');
  await stillServing(t);
});

t.test('absolute-form targets are served like their path; the 404 does not echo a long path whole', async (t) => {
  const r = await getTarget(http.port, 'http://meshd.example/echo?q=1');
  t.equal(r.status, 200);
  t.equal(r.body, '/echo?1\n');
  const long = `/${'x'.repeat(5000)}`;
  const missing = await getTarget(http.port, long);
  t.equal(missing.status, 404);
  t.ok(missing.body.length < 500, `404 body is short (${missing.body.length} bytes)`);
  t.match(missing.body, /\(5001 characters\)/);
});

t.test('other methods: 405, after the target is checked', async (t) => {
  t.equal((await rawHttp(http.port, 'POST /healthz HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')).status, 405);
  t.equal((await rawHttp(http.port, 'DELETE //[ HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n')).status, 405);
  t.equal((await rawHttp(http.port, 'DELETE http://[ HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n')).status, 400);
});

t.test('malformed HTTP: a bad request line is 400, headers over 16 KB 431; the connection is closed', async (t) => {
  const badLine = await rawHttp(http.port, 'GET /healthz HTTP/1.1 extra\r\n\r\n');
  t.equal(badLine.status, 400);
  const garbage = await rawHttp(http.port, '\x00\x01\x02 not http at all\r\n\r\n');
  t.equal(garbage.status, 400);
  const oversized = await rawHttp(http.port, `GET /healthz HTTP/1.1\r\nHost: m\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.equal(oversized.status, 431);
  t.ok(logs.some((l) => l.msg === 'malformed HTTP request refused' && l.level === 20), 'logged at debug level only');
  await stillServing(t);
});

t.test('a route that throws or rejects: 500 with a short message, counted, logged once per interval', async (t) => {
  const before = logs.length;
  failWith = new TypeError(`Cannot read properties of undefined (reading 'x')\n${'detail '.repeat(500)}`);
  const thrown = await getTarget(http.port, '/throws');
  t.equal(thrown.status, 500);
  t.equal(thrown.body, 'internal error: Cannot read properties of undefined (reading \'x\')\n', 'the first line of the message, no stack');
  const rejected = await getTarget(http.port, '/rejects');
  t.equal(rejected.status, 500);
  t.equal(await count('/throws'), 1);
  t.equal(await count('/rejects'), 1);

  for (let i = 0; i < 50; i++) await getTarget(http.port, '/throws');
  t.equal(await count('/throws'), 51, 'every error counted');
  const logged = () => logs.slice(before).filter((l) => l.msg === 'unexpected error in a request handler; answered as an internal error' && l.handler === '/throws');
  t.equal(logged().length, 1, 'but logged once');
  t.equal(logged()[0]!.error.type, 'TypeError');
  t.match(logged()[0]!.error.stack, /TypeError/);
  t.ok(JSON.stringify(logged()[0]).length < 6000, 'the line is bounded');

  clock.advance(HANDLER_ERROR_LOG_INTERVAL_MS);
  await getTarget(http.port, '/throws');
  t.equal(logged().length, 2, 'logged again after the interval');
  t.equal(logged()[1]!.notLogged, 50, 'saying how many were not logged');
  await stillServing(t);
});

t.test('whatever is thrown, even a value that cannot be printed, is answered', async (t) => {
  failWith = Object.create(null);
  t.equal((await getTarget(http.port, '/throws')).status, 500);
  failWith = undefined;
  t.equal((await getTarget(http.port, '/rejects')).status, 500);
  await stillServing(t);
});

t.test('a reply that cannot be written (an invalid header) is a 500, not a crash', async (t) => {
  const r = await getTarget(http.port, '/bad-header');
  t.equal(r.status, 500);
  t.notMatch(r.text, /x-injected/);
  t.equal(await count('/bad-header'), 1);
  await stillServing(t);
});

t.test('parseRequestTarget: origin-form and absolute-form only', async (t) => {
  const table: Array<[string | undefined, string | undefined]> = [
    ['/metrics', '/metrics'],
    ['/trust-bundle?format=pem', '/trust-bundle'],
    ['//[', '//['],
    ['//evil.example/metrics', '//evil.example/metrics'],
    ['/%zz', '/%zz'],
    ['http://x/debug/config', '/debug/config'],
    ['HTTPS://x/ready', '/ready'],
    ['http://[', undefined],
    ['ftp://x/metrics', undefined],
    ['metrics', undefined],
    ['*', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [target, path] of table) t.equal(parseRequestTarget(target)?.pathname, path, JSON.stringify(target));
});

t.test('meshd_handler_errors_total has a zero series per route before any error', async (t) => {
  const text = await registry.metrics();
  t.match(text, /meshd_handler_errors_total\{server="monitoring",handler="\/healthz"\} 0/);
  t.match(text, /meshd_handler_errors_total\{server="monitoring",handler="\(request\)"\} 0/);
});
