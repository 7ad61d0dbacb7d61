/** SPIFFE federation: meshd's bundle endpoint, and the foreign trust domains' bundles it trusts. */
export { encodeBundleDocument, parseBundleDocument, MAX_BUNDLE_BYTES, MAX_BUNDLE_KEYS, type ForeignBundle, type BundleParse, type BundleRefusal } from './bundle-document.js';
export { startBundleEndpoint, DEFAULT_BUNDLE_ENDPOINT_PORT, type BundleEndpointHandle, type BundleEndpointOptions, type BundleEndpointProfile, type ServingCertificateSource } from './bundle-endpoint.js';
export { FederatedBundles, type FederatedBundlesOptions, type ForeignBundleSet, type TrustedForeignBundle } from './federated-bundles.js';
export { DataDirBundleStore, type FederatedBundleStore, type StoredBundle } from './bundle-store.js';
export type { RefreshOutcome, RefreshFailure, HeldSource } from './bundle-refresher.js';
export { describeSource, type FederationRelationship, type EndpointProfile, type ConfiguredBundle } from './relationship.js';
