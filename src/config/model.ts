/**
 * The mesh model: an immutable snapshot built from the config dir. A config change
 * builds a new snapshot; nothing but src/config reads files.
 *
 * Shapes follow Istio's APIs (security.istio.io PeerAuthentication / AuthorizationPolicy,
 * networking.istio.io ServiceEntry / WorkloadEntry / DestinationRule, MeshConfig) and SPIRE's
 * ClusterFederatedTrustDomain (spire.spiffe.io), with names normalised to what meshd uses.
 */
import { SVID_ROTATION, TRUST_DOMAIN, WORKLOAD_CERT_TTL_MS } from '../common/defaults.js';
import type { FederationRelationship } from '../federation/relationship.js';

export type MtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

/** Where a document came from, for messages with file and line. */
export interface SourcePosition {
  file: string;
  line: number;
}

export interface ObjectMeta {
  name: string;
  namespace: string;
  /**
   * RFC 3339. Absent (usual for hand-written files) counts as newer than any timestamped
   * object; ties fall to name, then namespace (src/mesh/creation-order.ts).
   */
  creationTimestamp?: string;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  source: SourcePosition;
}

export interface PeerAuthentication {
  kind: 'PeerAuthentication';
  meta: ObjectMeta;
  /** undefined = no selector (namespace- or mesh-wide). */
  selector?: Readonly<Record<string, string>>;
  mode: MtlsMode;
  /** Keyed by the workload (target) port, as Istio keys portLevelMtls. */
  portLevelMtls: ReadonlyMap<number, MtlsMode>;
}

/** Istio port protocols; HTTP-family ports get an HTTP connection manager. */
export type PortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'GRPC-WEB' | 'HTTPS' | 'TCP' | 'TLS' | 'MONGO' | 'REDIS' | 'MYSQL' | 'UNKNOWN';

export interface ServicePort {
  number: number;
  protocol: PortProtocol;
  name: string;
  /** The workload port traffic is delivered to; defaults to `number`. */
  targetPort: number;
}

export interface ServiceEntry {
  kind: 'ServiceEntry';
  meta: ObjectMeta;
  hosts: readonly string[];
  addresses: readonly string[];
  ports: readonly ServicePort[];
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  /** Selects WorkloadEntries in the same namespace by label. */
  workloadSelector?: Readonly<Record<string, string>>;
  /** Inline endpoints (spec.endpoints), same shape as a WorkloadEntry's spec. */
  endpoints: readonly WorkloadSpec[];
  exportTo: readonly string[];
  /** spec.subjectAltNames: extra identities accepted for this service's endpoints. */
  subjectAltNames?: readonly string[];
}

export interface WorkloadSpec {
  /** An IP for WorkloadEntries and STATIC endpoints; a hostname only for DNS ServiceEntry endpoints. */
  address: string;
  /** Port name → workload port (WorkloadEntry.ports). */
  ports: Readonly<Record<string, number>>;
  labels: Readonly<Record<string, string>>;
  /** '' when unset (Istio then treats the endpoint as having no sidecar unless labelled tlsMode=istio). */
  serviceAccount: string;
  network?: string;
  locality?: string;
  weight?: number;
}

export interface WorkloadEntry {
  kind: 'WorkloadEntry';
  meta: ObjectMeta;
  spec: WorkloadSpec;
}

/**
 * security.istio.io AuthorizationPolicy actions. CUSTOM is kept so it can fail closed: meshd
 * runs no external authorizer, so (as istiod does for an unknown provider) requests matching a
 * CUSTOM policy's rules are denied.
 */
export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** Rule.From.source; every list is empty when unset. Fields are ANDed, values within a field ORed. */
export interface AuthorizationSource {
  principals: readonly string[];
  notPrincipals: readonly string[];
  requestPrincipals: readonly string[];
  notRequestPrincipals: readonly string[];
  namespaces: readonly string[];
  notNamespaces: readonly string[];
  serviceAccounts: readonly string[];
  notServiceAccounts: readonly string[];
  trustDomains: readonly string[];
  notTrustDomains: readonly string[];
  ipBlocks: readonly string[];
  notIpBlocks: readonly string[];
  remoteIpBlocks: readonly string[];
  notRemoteIpBlocks: readonly string[];
}

/** Rule.To.operation; every list is empty when unset. */
export interface AuthorizationOperation {
  hosts: readonly string[];
  notHosts: readonly string[];
  ports: readonly string[];
  notPorts: readonly string[];
  methods: readonly string[];
  notMethods: readonly string[];
  paths: readonly string[];
  notPaths: readonly string[];
}

/** Rule.when: an Istio attribute (`source.ip`, `request.headers[x-token]`, ...) and its values. */
export interface AuthorizationCondition {
  key: string;
  values: readonly string[];
  notValues: readonly string[];
}

export interface AuthorizationRule {
  /** Empty: any source. */
  from: readonly AuthorizationSource[];
  /** Empty: any operation. */
  to: readonly AuthorizationOperation[];
  when: readonly AuthorizationCondition[];
}

/** istio.type.v1beta1.PolicyTargetReference. */
export interface PolicyTargetReference {
  group: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface AuthorizationPolicy {
  kind: 'AuthorizationPolicy';
  meta: ObjectMeta;
  /** selector.matchLabels; undefined = no selector (namespace- or, in the root namespace, mesh-wide). */
  selector?: Readonly<Record<string, string>>;
  /** targetRef and targetRefs together. Non-empty: the policy applies to gateways/waypoints only, so to no sidecar. */
  targetRefs: readonly PolicyTargetReference[];
  action: AuthorizationAction;
  /** Empty for an ALLOW policy: it allows nothing (`spec: {}`). */
  rules: readonly AuthorizationRule[];
  /** provider.name of a CUSTOM policy. */
  provider?: string;
  /** The `istio.io/dry-run` annotation: the policy is evaluated as a shadow rule and enforces nothing. */
  dryRun: boolean;
}

/** networking.istio.io ClientTLSSettings.mode. */
export type ClientTlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';

/** ClientTLSSettings: the TLS a client sidecar originates towards a destination. */
export interface ClientTlsSettings {
  mode: ClientTlsMode;
  /** Files on the sidecar's host (MUTUAL). */
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  caCrl?: string;
  /** A Kubernetes Secret name: meshd cannot read Secrets and warns. */
  credentialName?: string;
  subjectAltNames: readonly string[];
  sni?: string;
  insecureSkipVerify?: boolean;
}

/** TrafficPolicy.portLevelSettings[]: an entry replaces the destination-level settings for its port. */
export interface PortTrafficPolicy {
  /** The service port number (PortSelector.number). */
  port: number;
  tls?: ClientTlsSettings;
}

/** The TrafficPolicy fields meshd applies; the others are accepted and ignored with a warning. */
export interface TrafficPolicy {
  tls?: ClientTlsSettings;
  portLevelSettings: readonly PortTrafficPolicy[];
}

export interface DestinationRuleSubset {
  name: string;
  labels: Readonly<Record<string, string>>;
}

export interface DestinationRule {
  kind: 'DestinationRule';
  meta: ObjectMeta;
  /** As written (a short name resolves against the rule's namespace when selected). */
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets: readonly DestinationRuleSubset[];
  exportTo: readonly string[];
  /** workloadSelector.matchLabels: the client workloads (in the rule's namespace) it applies to. */
  workloadSelector?: Readonly<Record<string, string>>;
}

/**
 * A foreign trust domain meshd trusts (ClusterFederatedTrustDomain, cluster-scoped:
 * `meta.namespace` is ''). Never meshd's own trust domain or one of its aliases, and at most
 * one per trust domain: build-snapshot.ts refuses both.
 */
export interface FederatedTrustDomain extends FederationRelationship {
  kind: 'ClusterFederatedTrustDomain';
  meta: ObjectMeta;
}

/** Mesh settings, keys after Istio's MeshConfig where one exists. */
export interface MeshSettings {
  trustDomain: string;
  trustDomainAliases: readonly string[];
  rootNamespace: string;
  enableAutoMtls: boolean;
  /** Workload SVID lifetime (istio-agent SECRET_TTL). */
  certificateTtlMs: number;
  /**
   * Fraction of the lifetime after which an SVID is re-issued (0 < f < 1). meshd's default is
   * 0.8 (a 24h SVID renews after ~19h12m), the grace ratio 0.2 in Istio's terms; istio-agent's
   * SECRET_GRACE_PERIOD_RATIO default of 0.5 renews at half-life. Setting
   * SECRET_GRACE_PERIOD_RATIO in the mesh config gives Istio's behaviour.
   */
  certificateRotationFraction: number;
  /** meshMTLS.minProtocolVersion. */
  minTlsVersion: 'TLSV1_2' | 'TLSV1_3';
  /** Where Envoy sends access logs (meshd's gRPC address as the sidecar reaches it). */
  accessLogService?: { address: string };
}

export const DEFAULT_MESH_SETTINGS: MeshSettings = {
  trustDomain: TRUST_DOMAIN,
  trustDomainAliases: [],
  rootNamespace: 'istio-system',
  enableAutoMtls: true,
  certificateTtlMs: WORKLOAD_CERT_TTL_MS,
  certificateRotationFraction: SVID_ROTATION.fraction,
  minTlsVersion: 'TLSV1_2',
};

/** A validation finding, worded as Istio words it. */
export interface ConfigMessage {
  level: 'error' | 'warning';
  message: string;
  source: SourcePosition;
  /** "PeerAuthentication/ns/name" where the document got that far. */
  resource?: string;
}

export interface MeshSnapshot {
  /** Increases with every applied change. */
  readonly version: number;
  readonly mesh: MeshSettings;
  readonly peerAuthentications: readonly PeerAuthentication[];
  readonly serviceEntries: readonly ServiceEntry[];
  readonly workloadEntries: readonly WorkloadEntry[];
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
  readonly destinationRules: readonly DestinationRule[];
  /** Foreign trust domains, by trust domain name. */
  readonly federatedTrustDomains: readonly FederatedTrustDomain[];
  /** Errors and warnings of the current config; errored documents keep their last good version. */
  readonly messages: readonly ConfigMessage[];
}
