/**
 * Who wins when two configs conflict, as istiod decides (pilot/pkg/model/config.go
 * configCompareByCreationTime): the oldest creationTimestamp, compared to the second as Kubernetes stores it; ties by name, then
 * namespace. An object without a (valid) timestamp counts as newer than any with one.
 */
export interface WithCreation {
  meta: { name: string; namespace: string; creationTimestamp?: string };
}

function createdAt(x: WithCreation): number {
  const ts = x.meta.creationTimestamp;
  const ms = ts === undefined ? Number.NaN : Date.parse(ts);
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : Math.floor(ms / 1000) * 1000;
}

/** Oldest first. */
export function compareByCreation(a: WithCreation, b: WithCreation): number {
  const ta = createdAt(a);
  const tb = createdAt(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (a.meta.name !== b.meta.name) return a.meta.name < b.meta.name ? -1 : 1;
  if (a.meta.namespace !== b.meta.namespace) return a.meta.namespace < b.meta.namespace ? -1 : 1;
  return 0;
}
