/** The CA's public surface: what `meshd serve`, SDS, the CSR API and the CLI import. */
export type * from './types.js';
export {
  openCertificateAuthority,
  type CertificateAuthorityOptions, type ManagedCertificateAuthority, type CaStatus, type RootStatus,
} from './authority.js';
export { spiffeBundleDocument, bundlePem, DEFAULT_REFRESH_HINT_SECONDS, type SpiffeBundleDocument, type X509SvidJwk } from './bundle.js';
export { CaError, CaMaterialError, type CaErrorCode } from './errors.js';
export {
  parseSpiffeId, tryParseSpiffeId, buildSpiffeId, workloadId, parseWorkloadId, trustDomainId, checkTrustDomain,
  SpiffeIdError, type SpiffeId, type WorkloadId, type SpiffeIdRule,
} from './spiffe-id.js';
export type { Signer, SigningCertificate } from './signer.js';
export { LEAF_KEY_TYPES, ROOT_KEY_TYPES } from './keys.js';
