/**
 * The Kubernetes envelope of a document: apiVersion, kind, metadata. Kinds are accepted in the
 * API versions Istio serves them in, so users paste what they have (`kubectl get pa -o yaml`).
 */
import { Reader, type YamlMap } from './fields.js';
import { dns1123LabelError, dns1123SubdomainError, isRfc3339, labelErrors } from './rules.js';

export type ResourceKind = 'PeerAuthentication' | 'AuthorizationPolicy' | 'ServiceEntry' | 'WorkloadEntry' | 'DestinationRule' | 'ClusterFederatedTrustDomain';

/**
 * Istio's served versions (security.istio.io CRD: v1, v1beta1; networking.istio.io: v1, v1beta1,
 * v1alpha3), and spire-controller-manager's for ClusterFederatedTrustDomain.
 */
export const SERVED_VERSIONS: Readonly<Record<ResourceKind, readonly string[]>> = {
  PeerAuthentication: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  AuthorizationPolicy: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  ServiceEntry: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
  WorkloadEntry: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
  DestinationRule: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
  ClusterFederatedTrustDomain: ['spire.spiffe.io/v1alpha1'],
};

/** Kinds without a namespace (Kubernetes scope: Cluster). */
export const CLUSTER_SCOPED_KINDS: readonly ResourceKind[] = ['ClusterFederatedTrustDomain'];

/**
 * Istio kinds meshd does not implement. A warning, not an error: the rest of the file applies
 * and `meshd validate` stays green, but the user learns the resource has no effect.
 */
export const UNSUPPORTED_ISTIO_KINDS = [
  'EnvoyFilter', 'Gateway', 'ProxyConfig', 'RequestAuthentication',
  'Sidecar', 'Telemetry', 'VirtualService', 'WasmPlugin', 'WorkloadGroup',
];

/** Kubernetes kinds that often sit beside Istio YAML; ignored with a warning. */
export const KUBERNETES_KINDS = ['Namespace', 'Service', 'Deployment', 'ServiceAccount', 'Pod', 'Secret', 'StatefulSet', 'DaemonSet'];

/** Kubernetes' own default when a manifest has no namespace (`kubectl apply` uses "default"). */
export const DEFAULT_NAMESPACE = 'default';

/** Top-level fields istioctl validate accepts (anything else: `unknown field`). */
const TOP_LEVEL = ['apiVersion', 'kind', 'metadata', 'spec', 'status'];

/** Server-populated metadata that pasted objects carry; read or tolerated. */
const METADATA_FIELDS = [
  'name', 'namespace', 'labels', 'annotations', 'creationTimestamp',
  'uid', 'resourceVersion', 'generation', 'managedFields', 'ownerReferences', 'finalizers', 'selfLink',
];

export interface Envelope {
  apiVersion?: string;
  kind?: string;
}

export function readEnvelope(doc: YamlMap, r: Reader): Envelope {
  const env: Envelope = {};
  const apiVersion = r.string(doc.apiVersion, ['apiVersion']);
  const kind = r.string(doc.kind, ['kind']);
  if (apiVersion !== undefined) env.apiVersion = apiVersion;
  if (kind !== undefined) env.kind = kind;
  return env;
}

export function checkTopLevel(doc: YamlMap, r: Reader): void {
  r.fields(doc, [], TOP_LEVEL);
}

export interface MetaFields {
  name?: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  creationTimestamp?: string;
}

/**
 * metadata, with Kubernetes' rules and wording (`resource name may not be empty`, RFC 1123 names).
 * For a cluster-scoped kind (`clusterScopedKind` set) the namespace is '' and one given is ignored.
 */
export function readMetadata(doc: YamlMap, r: Reader, clusterScopedKind?: string): MetaFields {
  const m = r.map(doc.metadata, ['metadata']) ?? {};
  r.fields(m, ['metadata'], METADATA_FIELDS);
  const out: MetaFields = { namespace: DEFAULT_NAMESPACE, labels: {}, annotations: {} };

  const name = r.string(m.name, ['metadata', 'name']);
  if (name === undefined || name === '') {
    r.issues.error(['metadata', 'name'], 'resource name may not be empty');
  } else {
    const err = dns1123SubdomainError(name);
    if (err) r.issues.error(['metadata', 'name'], `metadata.name: Invalid value: ${JSON.stringify(name)}: ${err}`);
    out.name = name;
  }

  const namespace = r.string(m.namespace, ['metadata', 'namespace']);
  if (clusterScopedKind !== undefined) {
    out.namespace = '';
    if (namespace !== undefined && namespace !== '') r.issues.warn(['metadata', 'namespace'], `${clusterScopedKind} is cluster-scoped; metadata.namespace is ignored`);
  } else if (namespace !== undefined && namespace !== '') {
    const err = dns1123LabelError(namespace);
    if (err) r.issues.error(['metadata', 'namespace'], `metadata.namespace: Invalid value: ${JSON.stringify(namespace)}: ${err}`);
    out.namespace = namespace;
  }

  const labels = r.stringMap(m.labels, ['metadata', 'labels']);
  if (labels) {
    for (const e of labelErrors(labels)) r.issues.error(['metadata', 'labels'], e);
    out.labels = labels;
  }
  const annotations = r.stringMap(m.annotations, ['metadata', 'annotations']);
  if (annotations) out.annotations = annotations;

  const ts = m.creationTimestamp;
  if (ts !== undefined && ts !== null) {
    if (typeof ts !== 'string' || !isRfc3339(ts)) {
      r.issues.error(['metadata', 'creationTimestamp'], `metadata.creationTimestamp: Invalid value: ${JSON.stringify(ts)}: must be an RFC 3339 time, e.g. "2024-05-01T12:00:00Z"`);
    } else {
      out.creationTimestamp = ts;
    }
  }
  return out;
}
