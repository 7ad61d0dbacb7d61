import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../common/logger.js';

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

export async function startHttpServer(host: string, port: number, routes: ReadonlyMap<string, HttpHandler>, logger: Logger): Promise<HttpServerHandle> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://meshd');
    const handler = routes.get(url.pathname);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, { status: 405, body: 'method not allowed\n' });
      return;
    }
    if (!handler) {
      reply(res, { status: 404, body: `no such endpoint ${url.pathname}; try ${[...routes.keys()].join(', ')}\n` });
      return;
    }
    Promise.resolve()
      .then(() => handler(url))
      .then((r) => reply(res, r))
      .catch((err: unknown) => {
        logger.error({ path: url.pathname, err: (err as Error).message }, 'HTTP handler failed');
        reply(res, { status: 500, body: `internal error: ${(err as Error).message}\n` });
      });
  });
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
