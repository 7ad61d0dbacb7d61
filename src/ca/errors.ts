/**
 * Istio's CA error kinds (security/pkg/pki/error/error.go), also the `error` label of
 * citadel_server_csr_sign_err_count. A gRPC adapter maps CSR_ERROR and TTL_ERROR to
 * INVALID_ARGUMENT, CA_NOT_READY and CERT_GEN_ERROR to INTERNAL (as istiod does).
 */
export type CaErrorCode = 'CSR_ERROR' | 'TTL_ERROR' | 'CERT_GEN_ERROR' | 'CA_NOT_READY';

export class CaError extends Error {
  constructor(readonly code: CaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CaError';
  }
}

/** CA material that cannot be used: start-up stops, the message names the file and the check. */
export class CaMaterialError extends Error {
  constructor(message: string, readonly file?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CaMaterialError';
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
