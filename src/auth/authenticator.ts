import { X509Certificate } from 'node:crypto';
import type { Counter } from 'prom-client';
import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import { AuthenticationError, type Authenticator, type CallCredentials, type Identity } from './identity.js';
import type { TokenAuthority, VerifiedToken } from './token-authority.js';
import type { TokenLedger } from './token-ledger.js';
import { verifyClientSvid } from './client-certificate.js';
import { parseWorkloadId } from './workload-id.js';
import { controlPlaneSpiffeId, workloadSpiffeId } from '../mesh/spiffe-identity.js';

export interface MeshAuthenticatorDeps {
  trustDomain: string;
  tokens: TokenAuthority;
  /** Single-use records and revocations of tokens; without one, neither is enforced. */
  ledger?: TokenLedger;
  /** The service account of a WorkloadEntry in force, or undefined when there is no such entry. */
  workloadEntry?: (namespace: string, name: string) => { serviceAccount: string } | undefined;
  /** Every certificate that may sign a client SVID: the bundle's roots and our intermediates. */
  issuers: () => readonly X509Certificate[];
  clock: Clock;
  logger: Logger;
  /** citadel_server_authentication_failure_count */
  failures: Counter<string>;
  /** meshd_authentication_failures_total{reason, namespace, service_account} */
  failuresByReason?: Counter<'reason' | 'namespace' | 'service_account'>;
}

/**
 * Tries, in Istio's order: a client SVID on the TLS port, then a bearer token in the
 * `authorization` metadata. Every failure is logged without the credential and counted.
 *
 * A client SVID is a workload's proof for as long as it is valid: a workload renews with the
 * certificate it holds, as SPIRE agents do after their join token's first use. meshd's own
 * identity (its serving SVID) is never accepted from a client, by certificate or token.
 */
export class MeshAuthenticator implements Authenticator {
  /**
   * One frozen Identity per verified token (the token authority caches it while the token is
   * valid): the streams of a service account's proxies share it.
   */
  private readonly tokenIdentities = new WeakMap<VerifiedToken, Identity>();
  private readonly controlPlaneId: string;

  constructor(private readonly deps: MeshAuthenticatorDeps) {
    this.controlPlaneId = controlPlaneSpiffeId(deps.trustDomain);
  }

  async authenticate(creds: CallCredentials): Promise<Identity> {
    try {
      return await this.identify(creds);
    } catch (err) {
      const failure = err instanceof AuthenticationError ? err : new AuthenticationError('authentication failed', 'invalid');
      this.deps.failures.inc();
      this.deps.failuresByReason?.inc({
        reason: failure.reason, namespace: failure.refused?.namespace ?? '', service_account: failure.refused?.serviceAccount ?? '',
      });
      this.deps.logger.warn({ peer: creds.peer, reason: failure.reason, err: (err as Error).message }, 'authentication failed');
      throw failure;
    }
  }

  private async identify(creds: CallCredentials): Promise<Identity> {
    const verified = creds.authContext?.sslPeerCertificate?.raw;
    if (verified) return this.fromCertificate(verified);
    const header = creds.metadata.get('authorization')[0];
    if (header === undefined) {
      // A certificate TLS did not verify: check it here so the refusal names why (expired, foreign CA, …).
      if (creds.unverifiedCertificate) return this.fromCertificate(creds.unverifiedCertificate);
      throw new AuthenticationError('no credential: send "authorization: Bearer <token>" metadata or a client SVID issued by this mesh\'s CA', 'missing');
    }
    const value = typeof header === 'string' ? header : header.toString('utf8');
    const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
    if (!m) throw new AuthenticationError('authorization metadata is not of the form "Bearer <token>"', 'invalid');
    const token = await this.deps.tokens.verify(m[1]!);
    try {
      await this.checkToken(token);
    } catch (err) {
      if (err instanceof AuthenticationError) throw err;
      // The ledger could not be read or written: refuse, saying so, rather than let a revoked or used token in.
      throw new AuthenticationError(`token ${token.id} cannot be checked: ${(err as Error).message}`, 'invalid', { namespace: token.namespace, serviceAccount: token.serviceAccount });
    }
    let identity = this.tokenIdentities.get(token);
    if (!identity) {
      identity = Object.freeze({
        spiffeId: workloadSpiffeId(this.deps.trustDomain, token.namespace, token.serviceAccount),
        trustDomain: this.deps.trustDomain,
        namespace: token.namespace,
        serviceAccount: token.serviceAccount,
        via: 'token' as const,
      });
      this.tokenIdentities.set(token, identity);
    }
    return identity;
  }

  private fromCertificate(raw: Buffer): Identity {
    const svid = verifyClientSvid(raw, this.deps.issuers(), this.deps.trustDomain, this.deps.clock.now());
    const id = parseWorkloadId(svid.spiffeId, this.deps.trustDomain);
    if (svid.spiffeId === this.controlPlaneId) {
      throw new AuthenticationError(`client certificate names ${svid.spiffeId}, meshd's own identity: it is not a workload credential`, 'control_plane_identity', id);
    }
    return { ...id, via: 'client-certificate', certificateSerial: svid.serialHex };
  }

  /** What a genuine token must also satisfy: not meshd's identity, not revoked, its WorkloadEntry, its single use. */
  private async checkToken(token: VerifiedToken): Promise<void> {
    const who = { namespace: token.namespace, serviceAccount: token.serviceAccount };
    if (workloadSpiffeId(this.deps.trustDomain, token.namespace, token.serviceAccount) === this.controlPlaneId) {
      throw new AuthenticationError(`token names ${this.controlPlaneId}, meshd's own identity: it is not a workload credential`, 'control_plane_identity', who);
    }
    const ledger = this.deps.ledger;
    if (ledger && token.id !== '' && (await ledger.isRevoked(token.id))) throw new AuthenticationError(`token ${token.id} has been revoked`, 'revoked', who);
    if (token.workloadEntry !== undefined) {
      const entry = this.deps.workloadEntry?.(token.namespace, token.workloadEntry);
      const name = `${token.namespace}/${token.workloadEntry}`;
      if (entry === undefined) {
        throw new AuthenticationError(`token ${token.id} is bound to WorkloadEntry ${name}, which does not exist`, 'workload_unknown', who);
      }
      if (entry.serviceAccount !== token.serviceAccount) {
        throw new AuthenticationError(
          `token ${token.id} names service account ${token.serviceAccount} but its WorkloadEntry ${name} runs as ${entry.serviceAccount}`, 'workload_mismatch', who);
      }
    }
    if (token.singleUse) {
      if (!ledger) throw new AuthenticationError(`token ${token.id} is single-use and this meshd keeps no token ledger`, 'invalid', who);
      if (!(await ledger.recordFirstUse(token.id, token.expiresAtMs))) {
        throw new AuthenticationError(`token ${token.id} is single-use and has already been used`, 'reused', who);
      }
    }
  }
}
