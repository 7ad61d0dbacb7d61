import { ServerCredentials } from '@grpc/grpc-js';

export interface ServingMaterial {
  keyPem: string;
  chainPem: string;
  /** Roots a client SVID may chain to (asked for, not enforced by TLS: tokens are accepted too). */
  rootsPem: string;
}

/**
 * TLS credentials for meshd's own gRPC port whose certificate can be replaced live:
 * grpc-js calls setSecureContext on every bound server when we update, so the serving
 * SVID rotates without a restart, and connections already open keep their handshake.
 *
 * Client certificates are requested but not required (requestCert without
 * rejectUnauthorized): a proxy may prove itself with a bearer token instead, and a
 * presented SVID is verified by the authenticator (src/auth/client-certificate.ts).
 */
const HANDSHAKE_TIMEOUT_MS = 15_000;

export class RotatingServerCredentials extends ServerCredentials {
  constructor(material: ServingMaterial) {
    // handshakeTimeout: a connection that has not finished its TLS handshake in 15 s is cut, as
    // Envoy's listener_filters_timeout (15 s) does, instead of Node's 120 s default holding the socket.
    super({ requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', handshakeTimeout: HANDSHAKE_TIMEOUT_MS }, toContext(material));
  }

  update(material: ServingMaterial): void {
    this.updateSecureContextOptions(toContext(material));
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

function toContext(m: ServingMaterial) {
  return { key: Buffer.from(m.keyPem), cert: Buffer.from(m.chainPem), ca: Buffer.from(m.rootsPem) };
}
