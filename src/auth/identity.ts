import type { Metadata } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';

/** grpc-js's AuthContext (not exported from its index). */
export interface AuthContext {
  transportSecurityType?: string;
  sslPeerCertificate?: PeerCertificate;
}

/** Who a caller proved to be. Secrets and certificates are handed out for this identity only. */
export interface Identity {
  spiffeId: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  /**
   * How it was proven: a bearer token, or a client SVID on the TLS port; 'local-socket' is
   * `meshd agent`'s local SDS, where being able to open the 0600 Unix socket is the proof.
   */
  via: 'token' | 'client-certificate' | 'local-socket';
  /** The serial of the client SVID that proved it (via 'client-certificate'): a renewal replaces that certificate. */
  certificateSerial?: string;
}

/** What a gRPC adapter hands the authenticator when a stream opens. */
export interface CallCredentials {
  metadata: Metadata;
  authContext: AuthContext | null;
  /** Peer address, for logs. */
  peer: string;
  /**
   * A client certificate the TLS layer received but did not verify (expired, unknown issuer):
   * grpc-js shows only verified ones in authContext. The authenticator checks it itself so a
   * refusal can say why (src/auth/tls-peer.ts).
   */
  unverifiedCertificate?: Buffer;
}

/**
 * Why a credential was refused, as a metric label and in logs. The last three are
 * PERMISSION_DENIED (the credential is genuine but may not be used so); the rest UNAUTHENTICATED.
 */
export type AuthenticationFailure =
  | 'missing' | 'invalid' | 'expired' | 'untrusted' | 'revoked' | 'reused'
  | 'control_plane_identity' | 'workload_mismatch' | 'workload_unknown';

const DENIED: ReadonlySet<AuthenticationFailure> = new Set(['control_plane_identity', 'workload_mismatch', 'workload_unknown']);

/** The identity a genuine but refused credential names (signature verified): lets a refusal be counted per identity. */
export interface RefusedIdentity {
  namespace: string;
  serviceAccount: string;
}

/** Raised for a refused credential: the call ends with UNAUTHENTICATED, or PERMISSION_DENIED (permissionDenied). */
export class AuthenticationError extends Error {
  constructor(message: string, readonly reason: AuthenticationFailure, readonly refused?: RefusedIdentity) {
    super(message);
  }

  get permissionDenied(): boolean {
    return DENIED.has(this.reason);
  }
}

export interface Authenticator {
  authenticate(creds: CallCredentials): Promise<Identity>;
}
