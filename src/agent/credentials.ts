import { decodeJwt } from 'jose';

/**
 * What the agent presents to meshd (CSR API, xDS, access logs), in SPIRE's order: the X.509-SVID
 * it holds while that is valid, and the join token only when it holds none (first start, or an
 * outage longer than the certificate's lifetime). A workload that keeps renewing never needs its
 * token again, so a short-lived (or single-use) join token is enough for good.
 *
 * Pure: the caller reads the token file and passes the time.
 */
export type CredentialKind = 'svid' | 'token' | 'none';

export type MeshdCredential =
  | { kind: 'svid'; keyPem: string; chainPem: string; notAfter: number }
  | { kind: 'token'; token: string; expiresAt: number | undefined };

/** Neither a valid SVID nor a usable token: the message says which is missing and why. */
export class NoCredentialError extends Error {
  override name = 'NoCredentialError';
}

export interface HeldSvid {
  keyPem: string;
  chainPem: string;
  notBefore: number;
  notAfter: number;
}

/** The token file as read: its text, or why it could not be read. */
export type TokenRead = { token: string } | { error: string };

/**
 * The `exp` claim of a JWT, read without verifying it (only meshd can): the agent uses it to
 * tell "expired" from "refused" and to say so before it sends the token. undefined when the
 * token is not a JWT or has no exp: such a token is tried, and meshd decides.
 */
export function tokenExpiresAt(token: string): number | undefined {
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * @param svid the certificate the agent holds, if any
 * @param svidRefused meshd refused this SVID (e.g. its CA no longer trusts the issuer): use the token
 */
export function chooseCredential(nowMs: number, svid: HeldSvid | undefined, svidRefused: boolean, token: TokenRead): MeshdCredential {
  if (svid !== undefined && !svidRefused && nowMs >= svid.notBefore && nowMs < svid.notAfter) {
    return { kind: 'svid', keyPem: svid.keyPem, chainPem: svid.chainPem, notAfter: svid.notAfter };
  }
  const svidProblem = svid === undefined
    ? 'no certificate yet'
    : nowMs >= svid.notAfter ? `the certificate expired at ${iso(svid.notAfter)}`
    : nowMs < svid.notBefore ? `the certificate is not valid before ${iso(svid.notBefore)}`
    : 'meshd refused the certificate';
  if ('error' in token) throw new NoCredentialError(`no valid credential for meshd: ${svidProblem}, and ${token.error}`);
  const expiresAt = tokenExpiresAt(token.token);
  if (expiresAt !== undefined && expiresAt <= nowMs) {
    throw new NoCredentialError(`no valid credential for meshd: ${svidProblem}, and the token in the token file expired at ${iso(expiresAt)}; issue a new one (meshd token issue) into the token file`);
  }
  return { kind: 'token', token: token.token, expiresAt };
}
