/**
 * Small validation predicates shared by the kinds, after Kubernetes' and Istio's rules
 * (k8s.io/apimachinery validation, istio pkg/config/labels, pkg/config/validation/agent).
 * Messages are Istio's / Kubernetes' wording so users can search for them.
 */
import { isIP } from 'node:net';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_LABEL_ANY_CASE = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
const QUALIFIED_NAME = /^(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^((?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS_PREFIX = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)*$/;

/** Kubernetes metadata.namespace and Istio port names: an RFC 1123 label (lower case for namespaces). */
export function dns1123LabelError(value: string): string | undefined {
  if (value.length <= 63 && DNS1123_LABEL.test(value)) return undefined;
  return `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc'), at most 63 characters`;
}

/** Kubernetes metadata.name and service account names: an RFC 1123 subdomain. */
export function dns1123SubdomainError(value: string): string | undefined {
  if (value.length > 0 && value.length <= 253 && value.split('.').every((l) => DNS1123_LABEL.test(l))) return undefined;
  return `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com'), at most 253 characters`;
}

/** Istio ValidatePortName: port names are DNS-1123 labels. */
export function isPortName(name: string): boolean {
  return name.length <= 63 && DNS1123_LABEL_ANY_CASE.test(name);
}

/** Istio agent.ValidatePort. */
export function portError(port: number): string | undefined {
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? undefined : `port number ${port} must be in the range 1..65535`;
}

/** Istio labels.Instance.Validate: Kubernetes label keys and values. */
export function labelErrors(labels: Readonly<Record<string, string>>): string[] {
  const errors: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    const slash = k.lastIndexOf('/');
    const prefix = slash >= 0 ? k.slice(0, slash) : '';
    const name = slash >= 0 ? k.slice(slash + 1) : k;
    if ((slash >= 0 && (!DNS_PREFIX.test(prefix) || prefix.length > 253)) || !QUALIFIED_NAME.test(name)) {
      errors.push(`invalid tag key: ${JSON.stringify(k)}`);
    } else if (name.length > 63) {
      errors.push(`invalid tag key: ${JSON.stringify(k)} (name is too long)`);
    }
    if (!LABEL_VALUE.test(v) || v.length > 63) errors.push(`invalid tag value: ${JSON.stringify(v)}`);
  }
  return errors;
}

/** Istio ValidateDNS1123Labels / ValidateFQDN. */
export function fqdnError(domain: string): string | undefined {
  if (domain.length > 255) return `domain name ${JSON.stringify(domain)} too long (max 255)`;
  if (domain.length === 0) return 'empty domain name not allowed';
  const parts = domain.split('.');
  const tld = parts[parts.length - 1]!;
  if (/^\d+$/.test(tld)) return `domain name ${JSON.stringify(domain)} invalid (top level domain ${JSON.stringify(tld)} cannot be all-numeric)`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i]!;
    if (i === parts.length - 1 && label === '') return undefined; // "istio.io." is unambiguous
    if (!(label.length <= 63 && DNS1123_LABEL_ANY_CASE.test(label))) {
      return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(label)} invalid)`;
    }
  }
  return undefined;
}

/** Istio ValidateWildcardDomain: a wildcard is allowed only as (a prefix of) the first label. */
export function wildcardDomainError(domain: string): string | undefined {
  if (domain.length > 255) return `domain name ${JSON.stringify(domain)} too long (max 255)`;
  if (domain.length === 0) return 'empty domain name not allowed';
  const dot = domain.indexOf('.');
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (!(first.length <= 63 && WILDCARD_LABEL.test(first))) {
    return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(first)} invalid)`;
  }
  return dot < 0 ? undefined : fqdnError(domain.slice(dot + 1));
}

/** Istio ValidateIPAddress. */
export function ipError(addr: string): string | undefined {
  return isIP(addr) !== 0 ? undefined : `${addr} is not a valid IP`;
}

/** Istio ValidateIPSubnet: an address or a CIDR block. */
export function ipSubnetError(subnet: string): string | undefined {
  const parts = subnet.split('/');
  if (parts.length === 2) {
    const [addr, bits] = parts as [string, string];
    const family = isIP(addr);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || !/^\d+$/.test(bits) || Number(bits) > max) return `${subnet} is not a valid CIDR block`;
    return undefined;
  }
  return ipError(subnet);
}

/** Istio's TrustDomain rule: DNS-1123 labels separated by dots. */
export function trustDomainError(domain: string): string | undefined {
  if (domain.length === 0) return 'empty domain name not allowed';
  const parts = domain.split('.');
  for (let i = 0; i < parts.length; i++) {
    if (i === parts.length - 1 && parts[i] === '') return undefined;
    if (!(parts[i]!.length <= 63 && DNS1123_LABEL_ANY_CASE.test(parts[i]!))) return `trust domain name ${JSON.stringify(domain)} invalid`;
  }
  return undefined;
}

/** RFC 3339 as Kubernetes writes metadata.creationTimestamp. */
export function isRfc3339(value: string): boolean {
  return /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value));
}

/**
 * Istio's validateExportTo (pkg/config/validation/validation.go) for ServiceEntry (which may
 * use `~`) and DestinationRule (which may not, and with a workloadSelector may only be
 * exported to its own namespace). `.` counts as the config's own namespace.
 */
export function exportToErrors(
  namespace: string,
  exportTo: readonly string[],
  kind: { serviceEntry?: boolean; destinationRuleWithSelector?: boolean } = {},
): string[] {
  const errors: string[] = [];
  if (exportTo.length === 0) return errors;
  const seen = new Set<string>();
  for (const e of exportTo) {
    const key = e === '.' ? namespace : e;
    if (seen.has(key)) {
      errors.push(key !== e ? `duplicate entries in exportTo: . and current namespace ${namespace}` : `duplicate entries in exportTo for entry ${e}`);
    } else if (kind.serviceEntry === true && e === '~') {
      seen.add(key);
    } else if (key === '~') {
      errors.push('exportTo ~ (none) is not allowed for Istio configuration objects');
    } else if (key !== '*' && dns1123LabelError(key) !== undefined) {
      errors.push('only .,*, or a valid DNS 1123 label is allowed as exportTo entry');
    } else {
      seen.add(key);
    }
  }
  if (kind.destinationRuleWithSelector === true && seen.size > 0) {
    if (!seen.has(namespace)) errors.push('destination rule with workload selector cannot have exportTo beyond current namespace');
    else if (seen.size > 1) errors.push('destination rule with workload selector cannot have multiple entries in exportTo');
  }
  if (seen.has('*') && exportTo.length > 1) errors.push('cannot have both public (*) and non-public exportTo values for a resource');
  if (seen.has('~') && exportTo.length > 1) errors.push('cannot export service entry to no one (~) and someone');
  return errors;
}
