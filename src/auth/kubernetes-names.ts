/**
 * The names a workload identity is made of, checked as Kubernetes checks them
 * (k8s.io/apimachinery/pkg/api/validation/generic.go: ValidateNamespaceName = NameIsDNSLabel,
 * ValidateServiceAccountName = NameIsDNSSubdomain; the rules are IsDNS1123Label and
 * IsDNS1123Subdomain in k8s.io/apimachinery/pkg/util/validation/validation.go):
 *
 * - a namespace is an RFC 1123 label: at most 63 characters, lowercase letters, digits and
 *   "-", starting and ending with a letter or digit;
 * - a service account is an RFC 1123 subdomain: at most 253 characters, such labels joined by ".".
 *
 * Every such name is also a valid SPIFFE path segment, so an identity that passes here always
 * makes a valid spiffe://<td>/ns/<ns>/sa/<sa>.
 */
export const MAX_NAMESPACE_LENGTH = 63;
export const MAX_SERVICE_ACCOUNT_LENGTH = 253;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `name` is not a Kubernetes namespace name, or undefined when it is one. */
export function namespaceNameError(name: string): string | undefined {
  if (name.length > MAX_NAMESPACE_LENGTH) return `namespace ${show(name)} is longer than ${MAX_NAMESPACE_LENGTH} characters`;
  if (!DNS_LABEL.test(name)) {
    return `namespace ${show(name)} is not a valid Kubernetes name (an RFC 1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit)`;
  }
  return undefined;
}

/** Why `name` is not a Kubernetes service account name, or undefined when it is one. */
export function serviceAccountNameError(name: string): string | undefined {
  if (name.length > MAX_SERVICE_ACCOUNT_LENGTH) return `service account ${show(name)} is longer than ${MAX_SERVICE_ACCOUNT_LENGTH} characters`;
  if (!DNS_SUBDOMAIN.test(name)) {
    return `service account ${show(name)} is not a valid Kubernetes name (an RFC 1123 subdomain: lowercase letters, digits, "-" and ".", each "."-separated part starting and ending with a letter or digit)`;
  }
  return undefined;
}

/** The first thing wrong with a namespace / service account pair, or undefined. */
export function workloadNamesError(namespace: string, serviceAccount: string): string | undefined {
  return namespaceNameError(namespace) ?? serviceAccountNameError(serviceAccount);
}

/** Quoted and cut: the name may be a client's, and the message reaches logs. */
function show(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 77)}...` : name);
}
