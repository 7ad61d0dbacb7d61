import { decodeJwt } from 'jose';

/**
 * Checks the bearer token that goes into the bootstrap before Envoy ever presents it, so a wrong
 * or expired token fails here with a clear message instead of as a refused ADS stream.
 * The signature is not checked (meshd does that on every stream); only the claims that decide
 * whether meshd would accept this proxy: subject system:serviceaccount:<ns>:<sa> of the
 * WorkloadEntry, and expiry. Not a JWT at all: accepted with a warning (another issuer's token).
 */
export interface TokenCheck {
  token: string;
  warnings: string[];
  expiresAt?: Date;
}

const SUBJECT = /^system:serviceaccount:([^:]+):([^:]+)$/;
const SOON_MS = 24 * 3_600_000;

export function checkBootstrapToken(
  raw: string,
  expected: { namespace: string; serviceAccount: string },
  nowMs: number,
  source = 'the token',
): TokenCheck {
  const token = raw.trim();
  if (token === '') throw new Error(`${source} is empty`);
  if (/\s/.test(token)) throw new Error(`${source} contains whitespace: expected one token (e.g. from \`meshd token issue\`)`);
  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(token);
  } catch {
    return { token, warnings: [`${source} is not a JWT; it is sent as is and meshd decides`] };
  }
  const want = `system:serviceaccount:${expected.namespace}:${expected.serviceAccount}`;
  const m = typeof claims.sub === 'string' ? SUBJECT.exec(claims.sub) : null;
  if (!m) throw new Error(`${source} has subject ${JSON.stringify(claims.sub ?? null)}, not of the form system:serviceaccount:<namespace>:<service-account>`);
  if (claims.sub !== want) {
    throw new Error(`${source} is for ${claims.sub}, but the workload runs as ${want}: meshd would refuse this proxy (mint one with \`meshd token issue -n ${expected.namespace} -s ${expected.serviceAccount}\`)`);
  }
  const out: TokenCheck = { token, warnings: [] };
  if (typeof claims.exp === 'number') {
    const expMs = claims.exp * 1000;
    out.expiresAt = new Date(expMs);
    if (expMs <= nowMs) throw new Error(`${source} expired at ${out.expiresAt.toISOString()}`);
    if (expMs - nowMs < SOON_MS) {
      out.warnings.push(`${source} expires at ${out.expiresAt.toISOString()}: after that Envoy cannot reconnect to meshd until it gets a new bootstrap`);
    }
  }
  return out;
}
