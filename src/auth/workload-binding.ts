import type { MeshSnapshot } from '../config/model.js';
import { findWorkloadEntry } from '../mesh/registry.js';
import { serviceAccountOf } from '../mesh/spiffe-identity.js';

/**
 * The service account of the WorkloadEntry `namespace/name` in force, or undefined when there is
 * none: a join token bound to an entry proves that entry's identity only while the entry exists
 * and still runs as the token's service account.
 */
export function workloadEntryAccount(snapshot: Pick<MeshSnapshot, 'workloadEntries'>, namespace: string, name: string): { serviceAccount: string } | undefined {
  const entry = findWorkloadEntry(snapshot, namespace, name);
  return entry ? { serviceAccount: serviceAccountOf(entry.spec.serviceAccount) } : undefined;
}
