import { X509Certificate } from 'node:crypto';
import type { Counter } from 'prom-client';
import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import { AuthenticationError, type Authenticator, type CallCredentials, type Identity } from './identity.js';
import type { TokenAuthority, TokenSubject } from './token-authority.js';
import { verifyClientSvid } from './client-certificate.js';
import { parseWorkloadId } from './workload-id.js';
import { workloadSpiffeId } from '../mesh/spiffe-identity.js';

export interface MeshAuthenticatorDeps {
  trustDomain: string;
  tokens: TokenAuthority;
  /** Every certificate that may sign a client SVID: the bundle's roots and our intermediates. */
  issuers: () => readonly X509Certificate[];
  clock: Clock;
  logger: Logger;
  /** citadel_server_authentication_failure_count */
  failures: Counter<string>;
}

/**
 * Tries, in Istio's order: a client SVID on the TLS port, then a bearer token in the
 * `authorization` metadata. Every failure is logged without the credential and counted.
 */
export class MeshAuthenticator implements Authenticator {
  /**
   * One frozen Identity per verified token subject (the token authority caches the subject
   * while the token is valid): the streams of a service account's proxies share it.
   */
  private readonly tokenIdentities = new WeakMap<TokenSubject, Identity>();

  constructor(private readonly deps: MeshAuthenticatorDeps) {}

  async authenticate(creds: CallCredentials): Promise<Identity> {
    try {
      return await this.identify(creds);
    } catch (err) {
      const reason = err instanceof AuthenticationError ? err.reason : 'invalid';
      this.deps.failures.inc();
      this.deps.logger.warn({ peer: creds.peer, reason, err: (err as Error).message }, 'authentication failed');
      if (err instanceof AuthenticationError) throw err;
      throw new AuthenticationError('authentication failed', 'invalid');
    }
  }

  private async identify(creds: CallCredentials): Promise<Identity> {
    const cert = creds.authContext?.sslPeerCertificate;
    if (cert?.raw) {
      const svid = verifyClientSvid(cert.raw, this.deps.issuers(), this.deps.trustDomain, this.deps.clock.now());
      return { ...parseWorkloadId(svid.spiffeId, this.deps.trustDomain), via: 'client-certificate' };
    }
    const header = creds.metadata.get('authorization')[0];
    if (header === undefined) {
      // grpc-js shows a client certificate only when TLS verified it against meshd's roots,
      // so a certificate from another CA arrives here as no certificate at all.
      throw new AuthenticationError('no credential: send "authorization: Bearer <token>" metadata or a client SVID issued by this mesh\'s CA', 'missing');
    }
    const value = typeof header === 'string' ? header : header.toString('utf8');
    const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
    if (!m) throw new AuthenticationError('authorization metadata is not of the form "Bearer <token>"', 'invalid');
    const subject = await this.deps.tokens.verify(m[1]!);
    let identity = this.tokenIdentities.get(subject);
    if (!identity) {
      identity = Object.freeze({
        spiffeId: workloadSpiffeId(this.deps.trustDomain, subject.namespace, subject.serviceAccount),
        trustDomain: this.deps.trustDomain,
        namespace: subject.namespace,
        serviceAccount: subject.serviceAccount,
        via: 'token' as const,
      });
      this.tokenIdentities.set(subject, identity);
    }
    return identity;
  }
}
