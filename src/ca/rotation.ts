import { ROOT_ROTATION_THRESHOLD } from '../common/defaults.js';
import type { RootKeyType } from './types.js';

/**
 * Root rotation as pure functions of the journal and the time (SPIRE keeps its CA slot
 * maths apart from I/O the same way: pkg/server/ca/manager). Nothing here reads a clock
 * or a file; the authority calls these with `now`.
 *
 * Life of a root: prepared (in the bundle, not signing) → active (signing) → old (in the
 * bundle, no longer signing, its SVIDs still valid) → gone (pruned when every SVID it can
 * have signed has expired). Activation and pruning times are written into the journal
 * when the successor is prepared, so every process reading the journal (serve, the CLI)
 * derives the same state at the same time without writing anything.
 */

export interface RootRecord {
  /** Directory under ca/roots/. */
  id: string;
  keyType: RootKeyType;
  /** SHA-256 of the certificate DER, hex: ties the record to its files. */
  fingerprint256: string;
  notBefore: number;
  notAfter: number;
  /** Joined the trust bundle. */
  preparedAt: number;
  /** Starts signing. */
  activateAt: number;
  /** Leaves the bundle; set when a successor is prepared. */
  pruneAt?: number;
}

export interface Journal {
  version: 1;
  trustDomain: string;
  roots: RootRecord[];
}

/** Slack on pruning for processes that read the journal late (they re-read every few seconds). */
export const PRUNE_MARGIN_MS = 10 * 60_000;

/** When a root stops being trusted: pruned, or expired, whichever comes first. */
export function removalTime(r: RootRecord): number {
  return Math.min(r.pruneAt ?? Infinity, r.notAfter);
}

export function inBundle(r: RootRecord, now: number): boolean {
  return r.preparedAt <= now && now < removalTime(r);
}

/** Roots a peer must trust now, oldest first. */
export function bundleRoots(roots: readonly RootRecord[], now: number): RootRecord[] {
  return roots.filter((r) => inBundle(r, now)).sort((a, b) => a.preparedAt - b.preparedAt || a.id.localeCompare(b.id));
}

/** The root that signs now: the most recently activated one still in the bundle (on a tie, the later journal entry). */
export function activeRoot(roots: readonly RootRecord[], now: number): RootRecord | undefined {
  let best: RootRecord | undefined;
  for (const r of roots) {
    if (r.activateAt <= now && inBundle(r, now) && (!best || r.activateAt >= best.activateAt)) best = r;
  }
  return best;
}

/**
 * spiffe_sequence (SPIFFE Trust Domain and Bundle §4.1.1): a count of bundle changes up to
 * `now` (each root added, each removed), so it only grows, changes whenever the roots do,
 * and every process computes the same number from the same journal.
 */
export function bundleSequence(roots: readonly RootRecord[], now: number): number {
  let n = 0;
  for (const r of roots) {
    if (r.preparedAt <= now) n++;
    if (removalTime(r) <= now) n++;
  }
  return n;
}

/** A root prepared to take over from the active one, not yet signing. */
export function pendingSuccessor(roots: readonly RootRecord[], now: number): RootRecord | undefined {
  const active = activeRoot(roots, now);
  return roots.find((r) => r.activateAt > now && now < removalTime(r) && (!active || r.activateAt > active.activateAt));
}

/** When the active root enters the last `threshold` of its life (Istio: 20%). */
export function rotationDueAt(root: Pick<RootRecord, 'notBefore' | 'notAfter'>, threshold = ROOT_ROTATION_THRESHOLD): number {
  return root.notAfter - threshold * (root.notAfter - root.notBefore);
}

export function rotationDue(roots: readonly RootRecord[], now: number, threshold = ROOT_ROTATION_THRESHOLD): boolean {
  const active = activeRoot(roots, now);
  if (!active) return false;
  return now >= rotationDueAt(active, threshold) && pendingSuccessor(roots, now) === undefined;
}

export interface PlanRotationInput {
  now: number;
  next: Omit<RootRecord, 'preparedAt' | 'activateAt' | 'pruneAt'>;
  overlapMs: number;
  /** The longest leaf any process may still sign with the old root: bounds its SVIDs' lives. */
  maxLeafTtlMs: number;
}

/**
 * The journal after preparing `next`: in the bundle now, signing after the overlap; every
 * root still trusted gets a prune time once its last possible SVID has expired (signed at
 * the latest just before activation, so activation + max leaf TTL), never after it expires.
 */
export function planRotation(journal: Journal, input: PlanRotationInput): Journal {
  const pending = pendingSuccessor(journal.roots, input.now);
  if (pending) {
    throw new Error(`root ${pending.id} is already prepared and activates at ${new Date(pending.activateAt).toISOString()}; rotate again after that`);
  }
  if (input.overlapMs < 0) throw new Error('rotation overlap must not be negative');
  const activateAt = input.now + input.overlapMs;
  const horizon = activateAt + input.maxLeafTtlMs + PRUNE_MARGIN_MS;
  const roots = journal.roots.map((r) => (r.pruneAt === undefined && removalTime(r) > input.now
    ? { ...r, pruneAt: Math.min(r.notAfter, horizon) }
    : r));
  roots.push({ ...input.next, preparedAt: input.now, activateAt });
  return { ...journal, roots };
}

/** The first journal: one root, active at once. */
export function initialJournal(trustDomain: string, root: Omit<RootRecord, 'preparedAt' | 'activateAt' | 'pruneAt'>, now: number): Journal {
  return { version: 1, trustDomain, roots: [{ ...root, preparedAt: now, activateAt: now }] };
}

/** The next time the derived state can change by itself (activation, prune, expiry, rotation due). */
export function nextTransition(roots: readonly RootRecord[], now: number, threshold = ROOT_ROTATION_THRESHOLD): number {
  let next = Infinity;
  for (const r of roots) {
    for (const at of [r.preparedAt, r.activateAt, removalTime(r), rotationDueAt(r, threshold)]) {
      if (at > now && at < next) next = at;
    }
  }
  return next;
}

export type RootState = 'prepared' | 'active' | 'old' | 'removed';

export function rootState(r: RootRecord, roots: readonly RootRecord[], now: number): RootState {
  if (!inBundle(r, now)) return r.preparedAt > now ? 'prepared' : 'removed';
  if (activeRoot(roots, now)?.id === r.id) return 'active';
  return r.activateAt > now ? 'prepared' : 'old';
}

/** Directory name for the next root: root-<n+1>. */
export function nextRootId(roots: readonly RootRecord[]): string {
  const max = roots.reduce((m, r) => Math.max(m, Number(/^root-(\d+)$/.exec(r.id)?.[1] ?? 0)), 0);
  return `root-${max + 1}`;
}
