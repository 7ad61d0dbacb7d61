import { createServer, type Server } from 'node:https';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { readFile } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { SpiffeBundleDocument } from '../ca/bundle.js';
import { encodeBundleDocument } from './bundle-document.js';
import { TLS_CIPHERS, TLS_MIN_VERSION } from './tls-policy.js';

/**
 * meshd's SPIFFE bundle endpoint (SPIFFE Federation §4): its own trust bundle over HTTPS, on a
 * port of its own, for other trust domains to fetch. `GET /` answers the bundle as
 * application/json; nothing else is served. No client authentication is asked for (§5.2.1.3, §5.2.2.3:
 * it MUST NOT be required).
 *
 * Both server profiles (§5.2):
 * - https_web: a certificate and key from files the operator provides (a public CA's, so
 *   foreign sides verify it with Web PKI), re-read when they change;
 * - https_spiffe: meshd's own X509-SVID, which foreign sides verify against meshd's bundle
 *   (that they obtained once out of band, then from this endpoint).
 *
 * Every request gets an answer: wrong method 405, another path 404, an unparsable target 400.
 * Connections, headers, handshakes and idle sockets are bounded.
 */

/** meshd's serving identity as this endpoint needs it (the composition root supplies it). */
export interface ServingCertificateSource {
  current(): { keyPem: string; chainPem: string };
  /** Called after the certificate was renewed. Returns an unsubscribe. */
  onChange(listener: () => void): () => void;
}

export type BundleEndpointProfile =
  | { type: 'https_web'; certFile: string; keyFile: string }
  | { type: 'https_spiffe'; identity: ServingCertificateSource };

export interface BundleEndpointOptions {
  host: string;
  port: number;
  profile: BundleEndpointProfile;
  /** meshd's bundle document, read per request. */
  bundle: () => SpiffeBundleDocument;
  logger: Logger;
  registry?: Registry;
  /** Whose timers poll the certificate files (default the system clock). */
  clock?: Clock;
  /** https_web: how often the certificate files are checked for a change (default 10 s). */
  filePollMs?: number;
}

export interface BundleEndpointHandle {
  port: number;
  /** https_web: re-reads the certificate files now; rejects (keeping the served certificate) when they do not load. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** SPIRE's bundle endpoint listens on 8443 by default (doc/spire_server.md, federation.bundle_endpoint). */
export const DEFAULT_BUNDLE_ENDPOINT_PORT = 8443;
const DEFAULT_CERT_FILE_POLL_MS = 10_000;
const MAX_CONNECTIONS = 256;
const MAX_HEADER_BYTES = 8 * 1024;
const TIMEOUT_MS = 10_000;

function tlsOptions(keyPem: string | Buffer, certPem: string | Buffer): SecureContextOptions {
  return { key: keyPem, cert: certPem, minVersion: TLS_MIN_VERSION, ciphers: TLS_CIPHERS };
}

async function readPair(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer; options: SecureContextOptions }> {
  const read = async (path: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new Error(`cannot read the bundle endpoint ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const [cert, key] = await Promise.all([read(certFile, 'certificate'), read(keyFile, 'key')]);
  const options = tlsOptions(key, cert);
  try {
    createSecureContext(options);
  } catch (err) {
    throw new Error(`the bundle endpoint certificate ${certFile} and key ${keyFile} do not load: ${(err as Error).message}`);
  }
  return { cert, key, options };
}

export async function startBundleEndpoint(opts: BundleEndpointOptions): Promise<BundleEndpointHandle> {
  const { logger, profile } = opts;
  const clock = opts.clock ?? systemClock;
  const requests = opts.registry
    ? new Counter({ name: 'meshd_federation_endpoint_requests_total', help: 'Requests to the SPIFFE bundle endpoint by HTTP status.', labelNames: ['code'], registers: [opts.registry] })
    : undefined;

  let initial: SecureContextOptions;
  let loaded: { cert: Buffer; key: Buffer } | undefined;
  if (profile.type === 'https_web') {
    const pair = await readPair(profile.certFile, profile.keyFile);
    loaded = pair;
    initial = pair.options;
  } else {
    const svid = profile.identity.current();
    initial = tlsOptions(svid.keyPem, svid.chainPem);
  }

  const reply = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => {
    requests?.inc({ code: String(status) });
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        reply(res, 405, 'method not allowed: the bundle endpoint answers GET\n', { allow: 'GET, HEAD' });
        return;
      }
      let path: string;
      try {
        path = new URL(req.url ?? '/', 'https://bundle-endpoint').pathname;
      } catch {
        reply(res, 400, 'bad request target\n');
        return;
      }
      if (path !== '/') {
        reply(res, 404, 'not found: the SPIFFE bundle is served at /\n');
        return;
      }
      const body = encodeBundleDocument(opts.bundle());
      requests?.inc({ code: '200' });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'the bundle endpoint could not answer');
      if (!res.headersSent) reply(res, 500, 'internal error\n');
      else res.destroy();
    }
  };

  const server: Server = createServer({ ...initial, maxHeaderSize: MAX_HEADER_BYTES, handshakeTimeout: TIMEOUT_MS }, handle);
  server.maxConnections = MAX_CONNECTIONS;
  server.headersTimeout = TIMEOUT_MS;
  server.requestTimeout = TIMEOUT_MS;
  server.keepAliveTimeout = 5_000;
  server.setTimeout(TIMEOUT_MS, (socket: Socket) => socket.destroy());
  server.on('clientError', (_err, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  // Failed handshakes (scanners, clients that do not trust the certificate) are theirs to report.
  server.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'bundle endpoint: TLS handshake failed'));

  let cancelPoll: (() => void) | undefined;
  let unsubscribe: (() => void) | undefined;
  let closed = false;

  const reload = async (): Promise<void> => {
    if (profile.type !== 'https_web') return;
    const pair = await readPair(profile.certFile, profile.keyFile);
    if (loaded && pair.cert.equals(loaded.cert) && pair.key.equals(loaded.key)) return;
    server.setSecureContext(pair.options);
    loaded = pair;
    logger.info({ certFile: profile.certFile }, 'bundle endpoint certificate reloaded');
  };
  if (profile.type === 'https_web') {
    const poll = (): void => {
      cancelPoll = clock.timer(opts.filePollMs ?? DEFAULT_CERT_FILE_POLL_MS, () => {
        void reload()
          .catch((err: Error) => logger.error({ err: err.message }, 'the bundle endpoint keeps its current certificate'))
          .finally(() => { if (!closed) poll(); });
      });
    };
    poll();
  } else {
    const identity = profile.identity;
    unsubscribe = identity.onChange(() => {
      const svid = identity.current();
      try {
        server.setSecureContext(tlsOptions(svid.keyPem, svid.chainPem));
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'the renewed serving certificate does not load; the bundle endpoint keeps the current one');
      }
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: Error) => {
    cancelPoll?.();
    unsubscribe?.();
    throw new Error(`cannot listen on ${opts.host}:${opts.port} for the bundle endpoint: ${err.message}`);
  });
  server.on('error', (err) => logger.error({ err: err.message }, 'bundle endpoint server error'));
  const port = (server.address() as AddressInfo).port;
  logger.info({ address: `${opts.host}:${port}`, profile: profile.type }, 'serving the SPIFFE bundle endpoint');

  return {
    port,
    reload,
    close: () => new Promise<void>((resolve) => {
      closed = true;
      cancelPoll?.();
      unsubscribe?.();
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
