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
}

/** What a gRPC adapter hands the authenticator when a stream opens. */
export interface CallCredentials {
  metadata: Metadata;
  authContext: AuthContext | null;
  /** Peer address, for logs. */
  peer: string;
}

/** Raised for a missing or invalid credential: the call ends with UNAUTHENTICATED. */
export class AuthenticationError extends Error {
  constructor(message: string, readonly reason: 'missing' | 'invalid' | 'expired' | 'untrusted') {
    super(message);
  }
}

export interface Authenticator {
  authenticate(creds: CallCredentials): Promise<Identity>;
}
