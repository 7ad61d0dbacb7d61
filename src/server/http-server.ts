import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/logger.js';
import type { HandlerErrors } from '../common/handler-errors.js';
import { clip } from '../xds/core/limits.js';

/**
 * meshd's HTTP port (15014, as istiod's monitoring port): /metrics, /ready, /healthz,
 * /trust-bundle and /debug/*. Read-only; handlers are plain functions returning a body.
 */
export interface HttpReply {
  status?: number;
  contentType?: string;
  /** The body, or its pieces written in order as they are (a large body is never joined first). */
  body: string | readonly (string | Uint8Array)[];
}

export type HttpHandler = (url: URL) => HttpReply | Promise<HttpReply>;

export interface HttpServerHandle {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export interface RouteServing {
  /** The server label of meshd_handler_errors_total ("monitoring"). */
  name: string;
  logger: Logger;
  errors: HandlerErrors;
}

export async function startHttpServer(host: string, port: number, routes: ReadonlyMap<string, HttpHandler>, serving: RouteServing): Promise<HttpServerHandle> {
  const server = createServer();
  serveRoutes(server, routes, serving);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    server,
    port: bound,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** The handler label of an error outside any route (parsing the request, writing the reply). */
const REQUEST = '(request)';

/**
 * Answers every request on an HTTP or HTTPS server from `routes`, and never lets one end the
 * process: a request target that does not parse is 400, a method other than GET/HEAD 405, an
 * unknown path 404, and an error in a route (thrown or rejected) 500 with a short message,
 * counted and logged through HandlerErrors. Malformed HTTP (a bad request line, oversized
 * headers) is refused on the socket by 'clientError', as Node does by default.
 */
export function serveRoutes(server: Server | HttpsServer, routes: ReadonlyMap<string, HttpHandler>, serving: RouteServing): void {
  for (const route of [REQUEST, ...routes.keys()]) serving.errors.declare(serving.name, route);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => handleRequest(req, res, routes, serving));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => refuseMalformed(err, socket, serving.logger));
}

function handleRequest(req: IncomingMessage, res: ServerResponse, routes: ReadonlyMap<string, HttpHandler>, serving: RouteServing): void {
  let route = REQUEST;
  const fail = (err: unknown): void => {
    const what = serving.errors.report(serving.name, route, err);
    try {
      if (res.headersSent) res.destroy();
      else reply(res, { status: 500, body: `internal error: ${what}\n` });
    } catch {
      res.destroy();
    }
  };
  try {
    const url = parseRequestTarget(req.url);
    if (url === undefined) {
      reply(res, { status: 400, body: 'bad request target: expected a path such as /metrics\n' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, { status: 405, body: 'method not allowed\n' });
      return;
    }
    const handler = routes.get(url.pathname);
    if (!handler) {
      reply(res, { status: 404, body: `no such endpoint ${clip(url.pathname, 100)}; try ${[...routes.keys()].join(', ')}\n` });
      return;
    }
    route = url.pathname;
    Promise.resolve()
      .then(() => handler(url))
      .then((r) => reply(res, r))
      .catch(fail);
  } catch (err) {
    fail(err);
  }
}

/**
 * The request target (RFC 9112 §3.2) as a URL, or undefined when it is neither origin-form
 * ("/path?query") nor absolute-form ("http://host/path"). An origin-form target is a path
 * whatever it looks like: "//[" is the path "//[" (WHATWG's URL parser would read a host into
 * it, and throw), so it is resolved against a fixed origin, never parsed on its own.
 */
export function parseRequestTarget(target: string | undefined): URL | undefined {
  if (target === undefined) return undefined;
  try {
    if (target.startsWith('/')) return new URL(`http://meshd${target}`);
    if (/^https?:\/\//i.test(target)) return new URL(target);
  } catch {
    // An absolute-form target that is not a URL ("http://[").
  }
  return undefined;
}

/**
 * Malformed HTTP (a bad request line, headers over Node's 16 KB, a request too slow to
 * arrive): answered as Node's own default handler answers (400, 431, 408) when nothing has
 * been written on the connection yet, then the connection is closed. Written here so that it
 * is ours to test, and logged at debug level only: the client decides how often it happens.
 */
function refuseMalformed(err: NodeJS.ErrnoException, socket: Duplex, logger: Logger): void {
  logger.debug({ code: err.code }, 'malformed HTTP request refused');
  const written = (socket as Partial<Socket>).bytesWritten ?? 0;
  if (err.code === 'ECONNRESET' || !socket.writable || written !== 0) {
    socket.destroy();
    return;
  }
  // A lingering close, as nginx's lingering_close: the status and a FIN go out, and what the client
  // is still sending (the rest of an oversized header) is read and dropped. Destroying the socket
  // with that input unread makes the kernel reset the connection, and the reset can reach the
  // client before the status and discard it. Bounded: the socket is cut after LINGER_MS.
  const cut = setTimeout(() => socket.destroy(), LINGER_MS);
  cut.unref();
  socket.once('close', () => clearTimeout(cut));
  socket.on('error', () => socket.destroy());
  socket.on('data', () => undefined);
  socket.end(`HTTP/1.1 ${MALFORMED_STATUS[err.code ?? ''] ?? '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
}

/** How long a refused connection may go on sending before it is cut. */
const LINGER_MS = 2_000;

const MALFORMED_STATUS: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

function reply(res: ServerResponse, r: HttpReply): void {
  const headers: Record<string, string | number> = { 'content-type': r.contentType ?? 'text/plain; charset=utf-8' };
  if (typeof r.body === 'string') {
    res.writeHead(r.status ?? 200, headers);
    res.end(r.body);
    return;
  }
  // A known length spares each piece the chunked encoding's framing.
  let length = 0;
  for (const chunk of r.body) length += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
  headers['content-length'] = length;
  res.writeHead(r.status ?? 200, headers);
  res.cork();
  for (const chunk of r.body) res.write(chunk);
  res.end();
}

export function json(value: unknown, status = 200): HttpReply {
  return { status, contentType: 'application/json', body: JSON.stringify(value, null, 2) + '\n' };
}
