import { SignJWT, jwtVerify, importPKCS8, importSPKI, errors as joseErrors, type CryptoKey as JoseKey, type KeyObject as JoseKeyObject } from 'jose';
import { generateKeyPairSync, createPublicKey, createPrivateKey, randomUUID, KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import type { Clock } from '../common/clock.js';
import { AuthenticationError } from './identity.js';
import { workloadNamesError } from './kubernetes-names.js';

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

export interface TokenSubject {
  namespace: string;
  serviceAccount: string;
}

export interface IssuedToken {
  token: string;
  expiresAt: Date;
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
  async issue(subject: TokenSubject, ttlMs: number): Promise<IssuedToken> {
    if (!(ttlMs > 0)) throw new Error('token TTL must be positive');
    const invalid = workloadNamesError(subject.namespace, subject.serviceAccount);
    if (invalid) throw new Error(`cannot issue a token: ${invalid}`);
    const nowSec = Math.floor(this.clock.now() / 1000);
    const exp = nowSec + Math.ceil(ttlMs / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(`system:serviceaccount:${subject.namespace}:${subject.serviceAccount}`)
      .setIssuedAt(nowSec)
      .setNotBefore(nowSec - 60)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /**
   * Tokens already verified, so a reconnect storm does not pay an ES256 verify per stream.
   * Only a fully verified token is cached, and never past its own exp (at most 5 minutes).
   */
  private readonly verified = new Map<string, { subject: TokenSubject; until: number }>();
  /**
   * Verifications under way: a fleet (re)connecting at once presents each service account's
   * token on thousands of streams before the first verify finishes; they share one.
   */
  private readonly verifying = new Map<string, Promise<TokenSubject>>();

  /**
   * Verifies signature, issuer, audience and lifetime, and that the subject names a valid
   * namespace and service account; errors never contain the token.
   */
  verify(token: string): Promise<TokenSubject> {
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

  private async verifyUncached(token: string): Promise<TokenSubject> {
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
      return { namespace: m[1]!, serviceAccount: m[2]! };
    } catch (err) {
      if (err instanceof AuthenticationError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new AuthenticationError('token has expired', 'expired');
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new AuthenticationError('token signature is not valid for this meshd', 'invalid');
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        throw new AuthenticationError(err.reason === 'missing' ? `token has no "${err.claim}" claim` : `token claim "${err.claim}" is not valid: ${err.reason}`, 'invalid');
      }
      throw new AuthenticationError('token is malformed', 'invalid');
    }
  }
}

function expiryMs(token: string): number {
  try {
    return Number(JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')).exp) * 1000 || 0;
  } catch {
    return 0;
  }
}
