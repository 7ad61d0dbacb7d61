import type { ServiceEntry } from '../../config/model.js';

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

interface WithMeta { meta: { name: string; namespace: string; creationTimestamp?: string } }

function createdAt(x: WithMeta): number {
  const ts = x.meta.creationTimestamp;
  const ms = ts === undefined ? Number.NaN : Date.parse(ts);
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : Math.floor(ms / 1000) * 1000;
}

/** Oldest first, ties by name then namespace: who wins a conflict, as istiod decides (configCompareByCreationTime). */
export function compareOldestFirst(a: WithMeta, b: WithMeta): number {
  const ta = createdAt(a);
  const tb = createdAt(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (a.meta.name !== b.meta.name) return a.meta.name < b.meta.name ? -1 : 1;
  if (a.meta.namespace !== b.meta.namespace) return a.meta.namespace < b.meta.namespace ? -1 : 1;
  return 0;
}
