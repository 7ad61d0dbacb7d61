import { status, type Server, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import type { Logger } from '../common/logger.js';
import type { CertificateAuthority, IssuedCertificate } from '../ca/types.js';
import { CaError, errorMessage } from '../ca/errors.js';
import { splitPemCertificates } from '../ca/pem.js';
import { AuthenticationError, type AuthContext, type Authenticator, type Identity } from '../auth/identity.js';
import { CREATE_CERTIFICATE_PATH, csrServiceDefinition, type CertificateRequest, type CertificateResponse } from './definition.js';
import { HandlerErrors } from '../common/handler-errors.js';
import { unverifiedClientCertificate } from '../auth/tls-peer.js';
import { addGuardedService } from '../common/guarded-service.js';
import { clip } from '../xds/core/limits.js';

/**
 * Istio's certificate API over meshd's CA: istio.v1.auth.IstioCertificateService/
 * CreateCertificate, as istiod serves it on 15012.
 *
 * - Authentication like SDS (bearer token or client SVID, via the one Authenticator); a failure
 *   is UNAUTHENTICATED with the authenticator's reason (never the credential).
 * - The certificate names the caller's proven identity whatever the CSR asks for: the CA signs
 *   only the CSR's public key (CertificateAuthority.signCsr).
 * - Errors map as istiod maps them (security/pkg/server/ca/server.go): CSR and TTL errors →
 *   INVALID_ARGUMENT with the CA's message, CA-not-ready and generation errors → INTERNAL.
 * - Response: leaf, each intermediate, then the whole root bundle as ONE last element (istiod's
 *   layout; istio-agent takes the last element as root-cert.pem and rejects ≤ 1 element).
 * - Metrics are the CA's own (citadel_server_csr_count, …_success_cert_issuance_count,
 *   …_csr_sign_err_count, …_csr_parsing_err_count): the service counts nothing twice.
 */
export interface CsrServiceDeps {
  ca: Pick<CertificateAuthority, 'signCsr'>;
  authenticator: Authenticator;
  logger: Logger;
  /** Counts and logs unexpected errors (meshd_handler_errors_total); one that only logs is made when none is given. */
  errors?: HandlerErrors;
  /** Told of every certificate issued, with the identity that asked (expiry metrics). */
  onIssued?: (identity: Identity, issued: IssuedCertificate) => void;
}

/** A PEM CSR for RSA 4096 is under 2 KB; anything far larger is not a CSR. */
export const MAX_CSR_BYTES = 64 * 1024;
/** Istio metadata key for node-agent impersonation (allowed only for CA_TRUSTED_NODE_ACCOUNTS). */
export const IMPERSONATED_IDENTITY = 'ImpersonatedIdentity';

export class CsrRequestError extends Error {
  constructor(readonly code: status, message: string) {
    super(message);
    this.name = 'CsrRequestError';
  }
}

/** One string per certificate of a PEM bundle, each ending with "\n" (re-exported for the agent). */
export { splitPemCertificates };

/** istiod's response layout: leaf, intermediates one by one, then the root bundle as one element. */
export function responseChain(issued: IssuedCertificate): string[] {
  const chain = splitPemCertificates(issued.chainPem);
  const roots = splitPemCertificates(issued.rootsPem).join('');
  if (chain.length === 0 || roots === '') throw new CaError('CERT_GEN_ERROR', 'the CA returned no certificate or no root bundle');
  return [...chain, roots];
}

function statusFor(err: unknown): { code: status; details: string } {
  if (err instanceof CsrRequestError) return { code: err.code, details: err.message };
  if (err instanceof AuthenticationError) {
    return { code: err.permissionDenied ? status.PERMISSION_DENIED : status.UNAUTHENTICATED, details: `request authenticate failure: ${err.message}` };
  }
  if (err instanceof CaError) {
    const invalid = err.code === 'CSR_ERROR' || err.code === 'TTL_ERROR';
    return { code: invalid ? status.INVALID_ARGUMENT : status.INTERNAL, details: err.message };
  }
  return { code: status.INTERNAL, details: `certificate issuance failed: ${errorMessage(err)}` };
}

/** The checks istiod makes before the CA sees the request. */
export function checkCertificateRequest(request: CertificateRequest): { ttlMs: number | undefined } {
  if (request.undecodable !== undefined) {
    throw new CsrRequestError(status.INVALID_ARGUMENT, `the request is not an istio.v1.auth.IstioCertificateRequest: ${clip(request.undecodable)}`);
  }
  if (request.csr.trim() === '') throw new CsrRequestError(status.INVALID_ARGUMENT, 'csr is empty: send a PEM-encoded PKCS#10 certificate request');
  if (Buffer.byteLength(request.csr) > MAX_CSR_BYTES) {
    throw new CsrRequestError(status.INVALID_ARGUMENT, `csr is ${Buffer.byteLength(request.csr)} bytes, over the ${MAX_CSR_BYTES}-byte limit`);
  }
  const seconds = request.validitySeconds;
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new CsrRequestError(status.INVALID_ARGUMENT, `validity_duration ${String(seconds)} is not a non-negative number of seconds`);
  }
  if (request.metadata[IMPERSONATED_IDENTITY] !== undefined) {
    throw new CsrRequestError(status.PERMISSION_DENIED, `metadata ${IMPERSONATED_IDENTITY} is not allowed: meshd issues certificates for the caller's own identity only`);
  }
  return { ttlMs: seconds === 0 ? undefined : seconds * 1000 };
}

export async function createCertificate(
  deps: CsrServiceDeps, request: CertificateRequest, authenticate: () => Promise<Identity>, peer: string,
): Promise<CertificateResponse> {
  const log = deps.logger;
  let identity: Identity;
  try {
    identity = await authenticate();
  } catch (err) {
    // The authenticator has logged and counted it (citadel_server_authentication_failure_count).
    throw err instanceof AuthenticationError ? err : new AuthenticationError(errorMessage(err), 'invalid');
  }
  const { ttlMs } = checkCertificateRequest(request);
  const issued = await deps.ca.signCsr({ spiffeId: identity.spiffeId, csrPem: request.csr, ...(ttlMs !== undefined ? { ttlMs } : {}) });
  log.info({ spiffeId: identity.spiffeId, via: identity.via, peer, serial: issued.serialHex, notAfter: issued.notAfter.toISOString() },
    'issued certificate through the CSR API');
  deps.onIssued?.(identity, issued);
  return { certChain: responseChain(issued) };
}

/** Registers CreateCertificate on a grpc-js server (meshd serves it on both gRPC ports, like xDS). */
export function addCsrService(server: Server, deps: CsrServiceDeps): void {
  const log = deps.logger.child({ component: 'csr-api' });
  const errors = deps.errors ?? new HandlerErrors({ logger: log });
  addGuardedService(server, csrServiceDefinition, {
    CreateCertificate(call: ServerUnaryCall<CertificateRequest, CertificateResponse>, callback: sendUnaryData<CertificateResponse>) {
      const peer = safePeer(call);
      const authenticate = (): Promise<Identity> =>
        deps.authenticator.authenticate({
          metadata: call.metadata, authContext: call.getAuthContext() as AuthContext | null, peer, unverifiedCertificate: unverifiedClientCertificate(call),
        });
      createCertificate({ ...deps, logger: log }, call.request, authenticate, peer).then(
        (response) => callback(null, response),
        (err: unknown) => {
          const s = statusFor(err);
          if (s.code === status.INTERNAL && !(err instanceof CaError)) {
            // Not the CA's own failure (which it has counted): an unexpected error of this handler.
            s.details = `certificate issuance failed: ${errors.report('grpc', CREATE_CERTIFICATE_PATH, err, { peer })}`;
          } else if (s.code === status.INTERNAL) {
            log.error({ peer, err: errorMessage(err) }, 'CSR API request failed');
          } else {
            log.warn({ peer, code: status[s.code], details: s.details }, 'CSR API request refused');
          }
          callback({ code: s.code, details: s.details, name: 'Error', message: s.details });
        },
      );
    },
  }, errors);
}

function safePeer(call: { getPeer(): string }): string {
  try {
    return clip(call.getPeer());
  } catch {
    return 'unknown';
  }
}
