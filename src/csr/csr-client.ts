import { Client, Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { CREATE_CERTIFICATE_PATH, decodeCertificateResponse, encodeCertificateRequest, type CertificateResponse } from './definition.js';

/**
 * The agent's side of the CSR API: one call over TLS to meshd, verifying meshd's serving
 * SVID by its URI SAN (spiffe://<td>/ns/istio-system/sa/meshd), as Envoy's xds-grpc cluster
 * and istio-agent check istiod. A fresh channel per call: renewals are hours apart, and a
 * new channel picks up a changed trust bundle or token without any cache to invalidate
 * (istio-agent rebuilds its connection on error for the same reason).
 */
export interface CsrCallOptions {
  /** host:port of meshd's TLS gRPC port. */
  address: string;
  /** Roots that may sign meshd's serving certificate. */
  trustedRootsPem: string;
  /** The SPIFFE ID meshd must present. */
  serverSpiffeId: string;
  /** Bearer token; sent as `authorization: Bearer …`. */
  token?: string;
  /** A client SVID to present instead of (or besides) a token. */
  clientCertificate?: { keyPem: string; chainPem: string };
  csrPem: string;
  validitySeconds: number;
  metadata?: Record<string, string>;
  deadlineMs?: number;
}

export class CsrCallError extends Error {
  constructor(readonly code: status, readonly details: string) {
    super(`CreateCertificate failed: ${status[code] ?? code}: ${details}`);
    this.name = 'CsrCallError';
  }
}

function uriSansOf(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

export function createCertificateCall(opts: CsrCallOptions): Promise<CertificateResponse> {
  const creds = credentials.createSsl(
    Buffer.from(opts.trustedRootsPem),
    opts.clientCertificate ? Buffer.from(opts.clientCertificate.keyPem) : null,
    opts.clientCertificate ? Buffer.from(opts.clientCertificate.chainPem) : null,
    {
      checkServerIdentity: (_host, cert) => (uriSansOf(cert).includes(opts.serverSpiffeId)
        ? undefined
        : new Error(`meshd at ${opts.address} presented ${cert.subjectaltname ?? 'no SAN'}, not ${opts.serverSpiffeId}`)),
    },
  );
  // SNI "meshd" (a DNS SAN of meshd's serving certificate); Node refuses IP literals as SNI.
  const client = new Client(opts.address, creds, { 'grpc.ssl_target_name_override': 'meshd', 'grpc.use_local_subchannel_pool': 1 });
  const metadata = new Metadata();
  if (opts.token !== undefined) metadata.set('authorization', `Bearer ${opts.token}`);
  const request = { csr: opts.csrPem, validitySeconds: opts.validitySeconds, metadata: opts.metadata ?? {} };
  return new Promise<CertificateResponse>((resolve, reject) => {
    client.makeUnaryRequest(
      CREATE_CERTIFICATE_PATH,
      encodeCertificateRequest,
      decodeCertificateResponse,
      request,
      metadata,
      { deadline: Date.now() + (opts.deadlineMs ?? 15_000) },
      (err: ServiceError | null, response?: CertificateResponse) => {
        client.close();
        if (err) reject(new CsrCallError(err.code, err.details));
        else if (!response) reject(new CsrCallError(status.INTERNAL, 'empty response'));
        else resolve(response);
      },
    );
  });
}
