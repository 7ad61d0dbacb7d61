import { AuthenticationError, type Identity } from './identity.js';
import { workloadNamesError } from './kubernetes-names.js';
import { parseWorkloadSpiffeId, workloadSpiffeId } from '../mesh/spiffe-identity.js';

/**
 * spiffe://<td>/ns/<ns>/sa/<sa> of the mesh's trust domain → its parts, when the namespace and
 * service account are valid Kubernetes names (kubernetes-names.ts); anything else is not a
 * workload identity.
 */
export function parseWorkloadId(spiffeId: string, trustDomain: string): Omit<Identity, 'via'> {
  const id = parseWorkloadSpiffeId(spiffeId);
  if (id === undefined || id.trustDomain !== trustDomain) {
    throw new AuthenticationError(`identity ${spiffeId} is not of the form ${workloadSpiffeId(trustDomain, '<namespace>', '<service-account>')}`, 'invalid');
  }
  const invalid = workloadNamesError(id.namespace, id.serviceAccount);
  if (invalid) throw new AuthenticationError(`identity ${spiffeId} names no valid workload: ${invalid}`, 'invalid');
  return { spiffeId, trustDomain, namespace: id.namespace, serviceAccount: id.serviceAccount };
}
