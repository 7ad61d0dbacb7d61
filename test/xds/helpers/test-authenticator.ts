import { AuthenticationError, type Authenticator, type CallCredentials, type Identity } from '../../../src/auth/identity.js';

/** The metadata header the test authenticator reads: "<namespace>/<service account>". */
export const TEST_IDENTITY_HEADER = 'x-test-identity';

export function identityHeader(namespace: string, serviceAccount: string): Record<string, string> {
  return { [TEST_IDENTITY_HEADER]: `${namespace}/${serviceAccount}` };
}

/**
 * An Authenticator for discovery tests: the identity is whatever the header says. Token
 * and certificate checks are the real authenticator's business and have their own tests;
 * here it only has to drive the UNAUTHENTICATED path and give proxies identities.
 */
export class HeaderAuthenticator implements Authenticator {
  calls = 0;

  constructor(private readonly trustDomain = 'cluster.local') {}

  async authenticate(creds: CallCredentials): Promise<Identity> {
    this.calls += 1;
    const value = creds.metadata.get(TEST_IDENTITY_HEADER)[0];
    if (value === undefined) throw new AuthenticationError('no credential: send x-test-identity', 'missing');
    const match = /^([a-z0-9-]+)\/([a-z0-9-]+)$/.exec(String(value));
    if (!match) throw new AuthenticationError('malformed x-test-identity', 'invalid');
    const [, namespace, serviceAccount] = match;
    return {
      spiffeId: `spiffe://${this.trustDomain}/ns/${namespace}/sa/${serviceAccount}`,
      trustDomain: this.trustDomain, namespace, serviceAccount, via: 'token',
    };
  }
}
