import { AuthenticationError, type Identity } from './identity.js';
import { workloadNamesError } from './kubernetes-names.js';

const WORKLOAD_PATH = /^\/ns\/([^/]+)\/sa\/([^/]+)$/;

/**
 * spiffe://<td>/ns/<ns>/sa/<sa> → its parts, when the namespace and service account are valid
 * Kubernetes names (kubernetes-names.ts); anything else is not a workload identity.
 */
export function parseWorkloadId(spiffeId: string, trustDomain: string): Omit<Identity, 'via'> {
  const prefix = `spiffe://${trustDomain}`;
  const m = spiffeId.startsWith(prefix) ? WORKLOAD_PATH.exec(spiffeId.slice(prefix.length)) : null;
  if (!m) throw new AuthenticationError(`identity ${spiffeId} is not of the form spiffe://${trustDomain}/ns/<namespace>/sa/<service-account>`, 'invalid');
  const invalid = workloadNamesError(m[1]!, m[2]!);
  if (invalid) throw new AuthenticationError(`identity ${spiffeId} names no valid workload: ${invalid}`, 'invalid');
  return { spiffeId, trustDomain, namespace: m[1]!, serviceAccount: m[2]! };
}
