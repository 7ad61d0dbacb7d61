import { TLSSocket } from 'node:tls';

/**
 * The client certificate of a call whose TLS layer did not verify it, as DER.
 *
 * meshd's TLS port requests a client certificate without requiring one (a bearer token is a
 * credential too), so Node completes the handshake for any certificate whose holder proved its
 * key, and marks the socket unauthorized with the reason (`CERT_HAS_EXPIRED`,
 * `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`, …). grpc-js's getAuthContext() then shows no
 * certificate at all (server-interceptors.ts returns `{}` when `socket.authorized` is false),
 * so an expired SVID would look like no credential. grpc-js exposes the socket of a call only
 * through its internals (call → intercepting call → HTTP/2 stream → session → socket); this
 * walks that path defensively and returns undefined if any step is missing, which leaves the
 * old behaviour ("no credential") rather than failing the call.
 */
export function unverifiedClientCertificate(call: unknown): Buffer | undefined {
  const socket = (call as { call?: { stream?: { session?: { socket?: unknown } } } } | undefined)?.call?.stream?.session?.socket;
  if (!(socket instanceof TLSSocket) || socket.authorized) return undefined;
  try {
    const cert = socket.getPeerCertificate();
    return cert?.raw && cert.raw.length > 0 ? cert.raw : undefined;
  } catch {
    return undefined;
  }
}
