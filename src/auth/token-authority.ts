import { SignJWT, jwtVerify, importPKCS8, importSPKI, errors as joseErrors, type CryptoKey as JoseKey, type KeyObject as JoseKeyObject } from 'jose';
import { generateKeyPairSync, createPublicKey, createPrivateKey, randomUUID, KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import type { Clock } from '../common/clock.js';
import { AuthenticationError } from './identity.js';
import { serviceAccountNameError, workloadNamesError } from './kubernetes-names.js';
import { CONTROL_PLANE_NAMESPACE, CONTROL_PLANE_SERVICE_ACCOUNT } from '../mesh/spiffe-identity.js';

/**
 * Bearer tokens for proxies and agents, signed by meshd (ES256, via jose).
 *
 * Claims follow a Kubernetes service-account token so Istio users recognise them:
 * sub = system:serviceaccount:<ns>:<sa>, aud = istio-ca (Istio's TOKEN_AUDIENCES default).
 * The signing key lives in the data dir beside the CA material and is never overwritten.
 */
export const TOKEN_KEY_FILE = 'token-signing-key.pem';
export const TOKEN_AUDIENCE = 'istio-ca';
export const TOKEN_ISSUER = 'meshd';
const SUBJECT = /^system:serviceaccount:([^:]+):([^:]+)$/;
/** Claims a token must carry (RFC 7519 §4.1); jose checks iss and aud values, exp and nbf against the clock. */
const REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'iat', 'exp'];
/** Private claims (RFC 7519 §4.3) of a join token: refused after its first use; bound to one WorkloadEntry "<ns>/<name>". */
const SINGLE_USE_CLAIM = 'meshd.single_use';
const WORKLOAD_CLAIM = 'meshd.workload_entry';
/** A jti as meshd writes it (a UUID) or any short id of safe characters: it names a ledger file. */
const TOKEN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export interface TokenSubject {
  namespace: string;
  serviceAccount: string;
}

/** What a verified token says beyond its subject. */
export interface VerifiedToken extends TokenSubject {
  /** The jti ('' in a token without one: such a token cannot be revoked). */
  id: string;
  expiresAtMs: number;
  singleUse: boolean;
  /** The WorkloadEntry (in the subject's namespace) the token is bound to. */
  workloadEntry?: string;
}

export interface TokenOptions {
  singleUse?: boolean;
  /** Name of a WorkloadEntry in the subject's namespace. */
  workloadEntry?: string;
}

export interface IssuedToken {
  token: string;
  /** The jti, for `meshd token revoke`. */
  id: string;
  expiresAt: Date;
}

export function isTokenId(id: string): boolean {
  return TOKEN_ID.test(id);
}

type SigningKey = JoseKey | JoseKeyObject | KeyObject;

export class TokenAuthority {
  private constructor(private readonly privateKey: SigningKey, private readonly publicKey: SigningKey, private readonly clock: Clock) {}

  /** Loads the signing key from the data dir, creating it on first use (never over an existing file). */
  static async open(dataDir: string, clock: Clock): Promise<TokenAuthority> {
    const path = join(dataDir, TOKEN_KEY_FILE);
    let pem: string;
    try {
      pem = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`cannot read the token signing key ${path}: ${(err as Error).message}`);
      }
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      try {
        await writeFileAtomic(path, pem, { mode: 0o600, exclusive: true });
      } catch (writeErr) {
        // Another process created it first: use theirs.
        if (!/refusing to overwrite/.test((writeErr as Error).message)) throw writeErr;
        pem = await readFile(path, 'utf8');
      }
    }
    let priv: KeyObject;
    try {
      priv = createPrivateKey(pem);
    } catch {
      throw new Error(`the token signing key ${path} is not a valid PEM private key; refusing to start (the file was left untouched)`);
    }
    if (priv.asymmetricKeyType !== 'ec') {
      throw new Error(`the token signing key ${path} is not an EC P-256 key; refusing to start (the file was left untouched)`);
    }
    const pubPem = createPublicKey(priv).export({ type: 'spki', format: 'pem' }).toString();
    return new TokenAuthority(await importPKCS8(pem, 'ES256'), await importSPKI(pubPem, 'ES256'), clock);
  }

  /** Signs a token for a namespace and service account, which must be valid Kubernetes names (kubernetes-names.ts). */
  async issue(subject: TokenSubject, ttlMs: number, options: TokenOptions = {}): Promise<IssuedToken> {
    if (!(ttlMs > 0)) throw new Error('token TTL must be positive');
    const invalid = workloadNamesError(subject.namespace, subject.serviceAccount);
    if (invalid) throw new Error(`cannot issue a token: ${invalid}`);
    if (subject.namespace === CONTROL_PLANE_NAMESPACE && subject.serviceAccount === CONTROL_PLANE_SERVICE_ACCOUNT) {
      throw new Error(`cannot issue a token for ${CONTROL_PLANE_NAMESPACE}/${CONTROL_PLANE_SERVICE_ACCOUNT}: that is meshd's own identity, not a workload's`);
    }
    if (options.workloadEntry !== undefined) {
      const entryError = serviceAccountNameError(options.workloadEntry);
      if (entryError) throw new Error(`cannot issue a token: WorkloadEntry name: ${entryError}`);
    }
    const nowSec = Math.floor(this.clock.now() / 1000);
    const exp = nowSec + Math.ceil(ttlMs / 1000);
    const id = randomUUID();
    const claims: Record<string, unknown> = {};
    if (options.singleUse) claims[SINGLE_USE_CLAIM] = true;
    if (options.workloadEntry !== undefined) claims[WORKLOAD_CLAIM] = `${subject.namespace}/${options.workloadEntry}`;
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(`system:serviceaccount:${subject.namespace}:${subject.serviceAccount}`)
      .setIssuedAt(nowSec)
      .setNotBefore(nowSec - 60)
      .setExpirationTime(exp)
      .setJti(id)
      .sign(this.privateKey);
    return { token, id, expiresAt: new Date(exp * 1000) };
  }

  /**
   * Tokens already verified, so a reconnect storm does not pay an ES256 verify per stream.
   * Only a fully verified token is cached, and never past its own exp (at most 5 minutes).
   */
  private readonly verified = new Map<string, { subject: VerifiedToken; until: number }>();
  /**
   * Verifications under way: a fleet (re)connecting at once presents each service account's
   * token on thousands of streams before the first verify finishes; they share one.
   */
  private readonly verifying = new Map<string, Promise<VerifiedToken>>();

  /**
   * Verifies signature, issuer, audience and lifetime, and that the subject names a valid
   * namespace and service account; errors never contain the token.
   */
  verify(token: string): Promise<VerifiedToken> {
    const now = this.clock.now();
    const hit = this.verified.get(token);
    if (hit && now < hit.until) return Promise.resolve(hit.subject);
    const pending = this.verifying.get(token);
    if (pending) return pending;
    const verification = this.verifyUncached(token).then(
      (subject) => {
        this.verifying.delete(token);
        if (this.verified.size >= 100_000) this.verified.clear();
        this.verified.set(token, { subject, until: Math.min(now + 300_000, expiryMs(token)) });
        return subject;
      },
      (err: unknown) => {
        this.verifying.delete(token); // failures are not cached: the next attempt verifies again
        throw err;
      },
    );
    this.verifying.set(token, verification);
    return verification;
  }

  private async verifyUncached(token: string): Promise<VerifiedToken> {
    try {
      const { payload } = await jwtVerify(token, this.publicKey, {
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        // Every token meshd issues has them all; one without an expiry would be valid forever.
        requiredClaims: REQUIRED_CLAIMS,
        algorithms: ['ES256'],
        clockTolerance: 30,
        currentDate: new Date(this.clock.now()),
      });
      const m = SUBJECT.exec(payload.sub ?? '');
      if (!m) throw new AuthenticationError('token subject is not system:serviceaccount:<namespace>:<name>', 'invalid');
      const invalid = workloadNamesError(m[1]!, m[2]!);
      if (invalid) throw new AuthenticationError(`token subject names no valid workload identity: ${invalid}`, 'invalid');
      const subject = { namespace: m[1]!, serviceAccount: m[2]! };
      // Every token meshd issues has a jti (revocation and single use key on it); one without cannot be revoked.
      const id = payload.jti === undefined ? '' : String(payload.jti);
      if (id !== '' && !TOKEN_ID.test(id)) throw new AuthenticationError('token id (jti) is not of the form meshd issues', 'invalid');
      const singleUse = payload[SINGLE_USE_CLAIM];
      if (singleUse !== undefined && typeof singleUse !== 'boolean') throw new AuthenticationError(`token claim "${SINGLE_USE_CLAIM}" is not a boolean`, 'invalid');
      if (singleUse === true && id === '') throw new AuthenticationError('a single-use token must carry a jti', 'invalid');
      const verified: VerifiedToken = { ...subject, id, expiresAtMs: Number(payload.exp) * 1000, singleUse: singleUse === true };
      const bound = payload[WORKLOAD_CLAIM];
      if (bound !== undefined) {
        const [ns, name, ...rest] = typeof bound === 'string' ? bound.split('/') : [];
        if (ns !== subject.namespace || name === undefined || rest.length > 0 || serviceAccountNameError(name) !== undefined) {
          throw new AuthenticationError(`token claim "${WORKLOAD_CLAIM}" must name a WorkloadEntry <namespace>/<name> in the token's namespace`, 'invalid');
        }
        verified.workloadEntry = name;
      }
      return verified;
    } catch (err) {
      if (err instanceof AuthenticationError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new AuthenticationError('token has expired', 'expired', subjectOf(err.payload.sub));
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new AuthenticationError('token signature is not valid for this meshd', 'invalid');
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        throw new AuthenticationError(err.reason === 'missing' ? `token has no "${err.claim}" claim` : `token claim "${err.claim}" is not valid: ${err.reason}`, 'invalid');
      }
      throw new AuthenticationError('token is malformed', 'invalid');
    }
  }
}

/** The identity of a token whose signature verified but which is refused (expired): for the refusal count only. */
function subjectOf(sub: unknown): TokenSubject | undefined {
  const m = SUBJECT.exec(typeof sub === 'string' ? sub : '');
  return m && !workloadNamesError(m[1]!, m[2]!) ? { namespace: m[1]!, serviceAccount: m[2]! } : undefined;
}

function expiryMs(token: string): number {
  try {
    return Number(JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')).exp) * 1000 || 0;
  } catch {
    return 0;
  }
}
