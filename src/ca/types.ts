/**
 * What the rest of meshd may know about the CA. The CA knows nothing of gRPC or Envoy:
 * it issues, validates what it issues, and tells subscribers when the bundle changes.
 */
export type RootKeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';
export type LeafKeyType = 'ec-p256' | 'rsa-2048';

export interface IssueOptions {
  /** The SPIFFE ID to put in the single URI SAN: always the caller's proven identity. */
  spiffeId: string;
  /** Lifetime; default 24h. Above the maximum (default 90 days) is rejected, not clamped. */
  ttlMs?: number;
  /** Extra DNS SANs (the control plane's own serving certificate uses them). */
  dnsNames?: string[];
}

export interface IssuedCertificate {
  spiffeId: string;
  /** The leaf alone. */
  certPem: string;
  /** Leaf then every intermediate up to, not including, the root: what a TLS peer presents. */
  chainPem: string;
  /** The trust bundle when this was issued: every root, concatenated. */
  rootsPem: string;
  /** Serial as lowercase hex without leading zeros. */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 fingerprint (hex) of the certificate that signed it. */
  issuerFingerprint: string;
}

export interface IssuedKeyPair extends IssuedCertificate {
  /** PKCS#8 PEM. Never logged. */
  keyPem: string;
  keyType: LeafKeyType;
}

export interface TrustBundle {
  trustDomain: string;
  /** Every trusted root, PEM, oldest first. */
  rootsPem: string[];
  /** spiffe_sequence: increases on every change of the roots. */
  sequence: number;
  /** spiffe_refresh_hint in seconds. */
  refreshHintSeconds: number;
}

export interface CertificateAuthority {
  readonly trustDomain: string;
  /** Generates the key pair (for SDS: Envoy cannot make a CSR) and signs it. */
  issue(opts: IssueOptions & { keyType?: LeafKeyType }): Promise<IssuedKeyPair>;
  /**
   * issue() for several requests in one pass (keys, then signatures, then validations: cheaper
   * per SVID than one by one). One result per request, in order: the SVID or the error it met.
   */
  issueBatch(requests: ReadonlyArray<IssueOptions & { keyType?: LeafKeyType }>): Promise<Array<IssuedKeyPair | Error>>;
  /** Signs a PKCS#10 CSR; whatever SAN the CSR asks for is ignored (as Istio does). */
  signCsr(opts: IssueOptions & { csrPem: string }): Promise<IssuedCertificate>;
  trustBundle(): TrustBundle;
  /** Called after the bundle changed (a root prepared, activated or pruned). Returns an unsubscribe. */
  onBundleChange(listener: (bundle: TrustBundle) => void): () => void;
}
