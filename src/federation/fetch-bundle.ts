import { request, type RequestOptions } from 'node:https';
import { rootCertificates, type PeerCertificate } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { OID } from '../ca/oids.js';
import { decodeBasicConstraints, decodeSubjectAltName, findExtension, parseCertificate } from '../ca/x509-parse.js';
import { MAX_BUNDLE_BYTES } from './bundle-document.js';
import type { Clock } from '../common/clock.js';
import type { EndpointProfile } from './relationship.js';
import { TLS_CIPHERS, TLS_MIN_VERSION } from './tls-policy.js';

/**
 * One GET of a bundle endpoint (SPIFFE Federation §4), authenticated per its profile:
 * - https_web: Web PKI, Node's CA list (plus `extraCaPem`, e.g. a private CA) and the host
 *   name check of RFC 6125;
 * - https_spiffe: the server's certificate chain must verify against the foreign trust
 *   domain's authorities meshd holds (and only those), and its leaf must be an X509-SVID with
 *   exactly the configured SPIFFE ID; the host name plays no part.
 * Redirects are followed (§5.2.1.4, §5.2.2.4), at most MAX_REDIRECTS, each hop to an https URL
 * and authenticated the same way (the same SPIFFE ID for https_spiffe); every redirect is treated
 * as temporary and the new location is never remembered (§7.5.1).
 * Everything is bounded: one deadline for the whole exchange, the body size, the headers.
 */

export type FetchFailure = 'unreachable' | 'timeout' | 'tls' | 'endpoint-id' | 'http-status' | 'too-large' | 'redirect';

export type FetchResult = { ok: true; body: Buffer } | { ok: false; reason: FetchFailure; message: string };

export interface FetchTarget {
  url: string;
  profile: EndpointProfile;
  /** https_spiffe: the foreign trust domain's X.509 authorities (PEM). */
  rootsPem?: readonly string[];
  /** https_web: CAs trusted beside Node's list. */
  extraCaPem?: string;
}

export interface FetchOptions {
  /** Whose timer bounds the exchange. */
  clock: Clock;
  /** The whole exchange: connect, TLS, every redirect, the body (default 10 s). */
  timeoutMs?: number;
  maxBytes?: number;
}

const DEFAULT_FETCH_TIMEOUT_MS = 10_000;
const MAX_REDIRECTS = 3;
const MAX_HEADER_BYTES = 16 * 1024;

class FetchError extends Error {
  constructor(readonly reason: FetchFailure, message: string) {
    super(message);
  }
}

/** Exactly one URI SAN equal to `expected`, and not a CA: an X509-SVID for that ID (X509-SVID §2, §4.1, §5). */
function svidIdentityError(der: Buffer, expected: string): string | undefined {
  try {
    const cert = parseCertificate(der, 'server certificate');
    const bc = findExtension(cert, OID.basicConstraints);
    if (bc && decodeBasicConstraints(bc.value).ca) return 'the server certificate is a CA certificate, not an X509-SVID';
    const san = findExtension(cert, OID.subjectAltName);
    const uris = san ? decodeSubjectAltName(san.value).uris : [];
    if (uris.length !== 1) return `the server certificate has ${uris.length} URI SANs; an X509-SVID has exactly one`;
    if (uris[0] !== expected) return `the server presented ${JSON.stringify(uris[0]!.slice(0, 300))}, not ${expected}`;
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const TLS_ERROR = /CERT|SIGNATURE|ISSUER|_CA$|INVALID_CA|PURPOSE|ALTNAME|HOSTNAME|SSL|TLS|UNABLE_TO/;

function classify(err: NodeJS.ErrnoException & { cert?: PeerCertificate }, target: FetchTarget, idError: string | undefined): FetchError {
  if (err instanceof FetchError) return err;
  if (idError !== undefined) return new FetchError('endpoint-id', `the bundle endpoint is not ${(target.profile as { endpointSpiffeId: string }).endpointSpiffeId}: ${idError}`);
  const code = err.code ?? '';
  if (TLS_ERROR.test(code)) {
    let message = `the bundle endpoint's certificate was not accepted (${code}: ${err.message})`;
    const uri = err.cert?.subjectaltname?.split(', ').find((n) => n.startsWith('URI:spiffe://'));
    // SPIRE's client gives the same hint (pkg/server/bundle/client/client.go).
    if (target.profile.type === 'https_web' && uri) message += `; it carries SPIFFE ID ${uri.slice(4)}: maybe use the https_spiffe profile instead of https_web`;
    return new FetchError('tls', message);
  }
  return new FetchError('unreachable', `cannot reach the bundle endpoint: ${code ? `${code}: ` : ''}${err.message}`);
}

function requestOptions(target: FetchTarget, onIdError: (e: string) => void): RequestOptions {
  const base: RequestOptions = {
    method: 'GET',
    agent: false,
    headers: { accept: 'application/json' },
    maxHeaderSize: MAX_HEADER_BYTES,
    minVersion: TLS_MIN_VERSION,
    ciphers: TLS_CIPHERS,
    rejectUnauthorized: true,
  };
  if (target.profile.type === 'https_web') {
    if (target.extraCaPem) base.ca = [...rootCertificates, target.extraCaPem];
    return base;
  }
  const expected = target.profile.endpointSpiffeId;
  return {
    ...base,
    // Only the foreign trust domain's authorities: Node's default CA list is replaced.
    ca: [...(target.rootsPem ?? [])],
    checkServerIdentity: (_host, cert) => {
      const problem = svidIdentityError(cert.raw, expected);
      if (problem === undefined) return undefined;
      onIdError(problem);
      return new Error(problem);
    },
  };
}

function readBody(res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(res.headers['content-length']);
    // Reject before destroying: destroying the response also fails the request.
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(new FetchError('too-large', `the bundle endpoint announced ${declared} bytes, above the ${maxBytes}-byte limit`));
      res.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(new FetchError('too-large', `the bundle endpoint sent more than ${maxBytes} bytes`));
        res.destroy();
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new FetchError('unreachable', 'the bundle endpoint closed the connection mid-response')));
  });
}

function printable(s: string | undefined): string {
  return (s ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 80);
}

function once(url: URL, target: FetchTarget, maxBytes: number, abort: AbortSignal): Promise<{ body: Buffer } | { location: string }> {
  return new Promise((resolve, reject) => {
    let idError: string | undefined;
    const req = request(url, { ...requestOptions(target, (e) => { idError = e; }), signal: abort }, (res) => {
      const status = res.statusCode ?? 0;
      if ([301, 302, 303, 307, 308].includes(status)) {
        res.resume();
        const location = res.headers.location;
        if (!location) reject(new FetchError('redirect', `HTTP ${status} without a Location header`));
        else resolve({ location });
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(new FetchError('http-status', `the bundle endpoint answered HTTP ${status} ${printable(res.statusMessage)}`));
        return;
      }
      readBody(res, maxBytes).then((body) => resolve({ body }), (err: Error) => reject(abort.aborted ? abort.reason as Error : classify(err, target, idError)));
    });
    req.on('error', (err) => reject(abort.aborted ? abort.reason as Error : classify(err, target, idError)));
    req.end();
  });
}

/** Fetches the bundle document's bytes; never throws. */
export async function fetchBundleBody(target: FetchTarget, options: FetchOptions): Promise<FetchResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? MAX_BUNDLE_BYTES;
  const controller = new AbortController();
  const cancel = options.clock.timer(timeoutMs, () => controller.abort(new FetchError('timeout', `no complete answer from the bundle endpoint within ${timeoutMs} ms`)));
  try {
    let url: URL = new URL(target.url);
    for (let hop = 0; ; hop++) {
      const r = await once(url, target, maxBytes, controller.signal);
      if ('body' in r) return { ok: true, body: r.body };
      if (hop >= MAX_REDIRECTS) throw new FetchError('redirect', `more than ${MAX_REDIRECTS} redirects`);
      let next: URL;
      try {
        next = new URL(r.location, url);
      } catch {
        throw new FetchError('redirect', `redirected to an invalid location ${JSON.stringify(printable(r.location))}`);
      }
      if (next.protocol !== 'https:' || next.username !== '' || next.password !== '') {
        throw new FetchError('redirect', `redirected to ${JSON.stringify(printable(next.href))}; a bundle endpoint must be https without userinfo`);
      }
      url = next;
    }
  } catch (err) {
    const e = err instanceof FetchError ? err : classify(err as NodeJS.ErrnoException, target, undefined);
    return { ok: false, reason: e.reason, message: e.message };
  } finally {
    cancel();
    controller.abort();
  }
}
