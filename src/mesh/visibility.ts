import type { ServiceEntry } from '../config/model.js';

/**
 * ServiceEntry.exportTo as Istio reads it: empty or `*` = every namespace, `.` = its own
 * namespace, `~` = none, otherwise the listed namespaces.
 */
export function isVisibleTo(entry: ServiceEntry, namespace: string): boolean {
  const exportTo = entry.exportTo;
  if (exportTo.length === 0) return true;
  for (const e of exportTo) {
    if (e === '*') return true;
    if (e === '.' && entry.meta.namespace === namespace) return true;
    if (e === namespace) return true;
  }
  return false;
}
