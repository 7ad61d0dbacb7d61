import type { Resource } from './types.js';
import type { DeltaRequest, ErrorDetail } from './requests.js';
import { applyDeltaChanges, covers, subscribedOnce, WILDCARD, type SubscriptionChange } from './subscription.js';
import { shortDigest, viewVersion } from './resource.js';
import { TypeState, type SentSummary } from './type-state.js';

/** One delta response as sent, kept until the client answers it. */
export interface DeltaSent extends SentSummary {
  /** Identifies the content (added name@version and removed names) for the NACK policy. */
  readonly key: string;
  /** Before/after of every name the response touched, to undo it on a NACK. */
  readonly before: ReadonlyMap<string, string | undefined>;
  readonly after: ReadonlyMap<string, string | undefined>;
}

export interface DeltaOutcome {
  acked?: DeltaSent;
  nacked?: { sent: DeltaSent; detail: ErrorDetail };
  /** A nonce this stream issued that no longer awaits an answer (counted, otherwise harmless). */
  expiredNonce?: string;
  generate: boolean;
  change: SubscriptionChange;
}

export interface DeltaPlan {
  resources: Resource[];
  removed: string[];
  version: string;
  key: string;
}

/** Unanswered responses remembered per type; Envoy answers each one, so this is only a bound. */
const PENDING_MEMORY = 64;

/**
 * The incremental (delta) protocol for one type on one stream. Pure, like SotwTypeState.
 */
export class DeltaTypeState extends TypeState<DeltaSent> {

  /** Version of each resource the client holds as far as we know; '' = must be re-sent or reported removed. */
  private readonly held = new Map<string, string>();
  /** Explicitly subscribed names already reported in removed_resources (not repeated on every push). */
  private readonly reportedAbsent = new Set<string>();
  private readonly pending = new Map<string, DeltaSent>();

  receive(request: DeltaRequest, issued: (nonce: string) => boolean): DeltaOutcome {
    const first = this.requestCount === 0;
    this.requestCount += 1;
    const outcome: Omit<DeltaOutcome, 'generate' | 'change'> = {};

    if (first) {
      // xds_protocol: on reconnect the client lists what it holds; what it has at the current
      // version is not sent again (a different version, or a deleted resource, is).
      for (const [name, version] of Object.entries(request.initialResourceVersions)) this.held.set(name, version);
    }

    const nonce = request.responseNonce;
    if (nonce !== '') {
      const sent = this.pending.get(nonce);
      if (sent) {
        this.pending.delete(nonce);
        // xds_protocol: ACK/NACK by error_detail, as in SotW.
        if (request.errorDetail) {
          sent.outcome = 'nacked';
          outcome.nacked = { sent, detail: request.errorDetail };
          this.undo(sent);
          this.rememberRejected(sent.key, sent.after); // the content key covers removals too
        } else {
          sent.outcome = 'acked';
          outcome.acked = sent;
        }
      } else if (issued(nonce)) {
        outcome.expiredNonce = nonce;
      }
      // xds_protocol: the nonce only correlates ACKs; it never causes a request to be ignored.
    }

    const change = applyDeltaChanges(this.subscription, request.subscribe, request.unsubscribe, first);
    const previous = this.subscription;
    this.subscription = change.next;
    let cornerCase = false;
    for (const name of change.added) {
      // xds_protocol: a (re-)subscribed name the client may have forgotten is sent even at the
      // current version, except what it declared in initial_resource_versions.
      if (!(first && name in request.initialResourceVersions)) this.held.delete(name);
      this.reportedAbsent.delete(name);
    }
    for (const name of request.unsubscribe) {
      // xds_protocol: phantom unsubscribes (names never subscribed) are ignored.
      if (name === WILDCARD || !previous.names.has(name) || this.subscription.names.has(name)) continue;
      this.reportedAbsent.delete(name);
      if (this.subscription.wildcard && previous.wildcard) {
        // xds_protocol incremental corner case: with "*" plus explicit X, unsubscribing X must be answered with X
        // in resources (the wildcard still covers it) or in removed_resources.
        this.held.set(name, '');
        cornerCase = true;
      } else {
        // A pure unsubscribe needs no response; phantom unsubscribes are ignored.
        this.held.delete(name);
      }
    }
    if (change.wildcardRemoved) {
      for (const name of [...this.held.keys()]) if (!this.subscription.names.has(name)) this.held.delete(name);
    }
    if (first) this.mustAnswer = true;
    const generate = first || change.added.length > 0 || change.wildcardAdded || cornerCase;
    return { ...outcome, generate, change };
  }

  /** As SotwTypeState.force: the next plan re-sends these names, if held, even unchanged. */
  force(names: Iterable<string>): number {
    let n = 0;
    for (const name of names) {
      const held = this.held.get(name);
      if (held !== undefined && held !== '' && covers(this.subscription, name)) { this.held.set(name, ''); n += 1; }
    }
    return n;
  }

  plan(desired: readonly Resource[]): DeltaPlan | undefined {
    const wanted = subscribedOnce(this.subscription, desired);
    const seen = new Set(wanted.map((r) => r.name));
    const resources: Resource[] = [];
    for (const resource of wanted) {
      // xds_protocol: delta sends only what changed. NACK policy: never a version this stream rejected.
      if (this.held.get(resource.name) === resource.version) continue;
      if (this.rejectedVersion(resource.name, resource.version)) { this.suppressed += 1; continue; }
      resources.push(resource);
    }
    const removed: string[] = [];
    // xds_protocol: deletion goes in removed_resources ...
    for (const name of this.held.keys()) if (!seen.has(name)) removed.push(name);
    // ... and so does a subscribed name that does not exist, so the client knows at once.
    for (const name of this.subscription.names) {
      if (!seen.has(name) && !this.held.has(name) && !this.reportedAbsent.has(name)) removed.push(name);
    }
    if (resources.length === 0 && removed.length === 0 && !this.mustAnswer) return undefined;
    const key = contentKey(resources, removed);
    // NACK policy (as in SotW): the same content is not sent again after a NACK.
    if (!this.mustAnswer && this.wasRejected(key)) { this.suppressed += 1; return undefined; }
    const view = new Map(this.held);
    for (const r of resources) view.set(r.name, r.version);
    for (const name of removed) view.delete(name);
    return { resources, removed, version: viewVersion(view), key };
  }

  commit(plan: DeltaPlan, nonce: string, sentAt: number, queuedAt: number, pushed: boolean): DeltaSent {
    const before = new Map<string, string | undefined>();
    const after = new Map<string, string | undefined>();
    for (const r of plan.resources) {
      before.set(r.name, this.held.get(r.name));
      after.set(r.name, r.version);
      this.held.set(r.name, r.version);
      this.reportedAbsent.delete(r.name);
    }
    for (const name of plan.removed) {
      before.set(name, this.held.get(name));
      after.set(name, undefined);
      this.held.delete(name);
      if (this.subscription.names.has(name)) this.reportedAbsent.add(name);
    }
    this.mustAnswer = false;
    const sent: DeltaSent = {
      nonce, version: plan.version, key: plan.key, before, after,
      names: [...plan.resources.map((r) => r.name), ...plan.removed],
      sentAt, queuedAt, pushed, outcome: 'pending',
    };
    this.pending.set(nonce, sent);
    if (this.pending.size > PENDING_MEMORY) this.pending.delete(this.pending.keys().next().value!);
    this.latest = sent;
    return sent;
  }

  status(): 'SYNCED' | 'STALE' | 'NOT SENT' {
    if (!this.latest) return 'NOT SENT';
    return this.latest.outcome === 'acked' && this.pending.size === 0 ? 'SYNCED' : 'STALE';
  }

  heldVersions(): Map<string, string> {
    return new Map([...this.held].filter(([, v]) => v !== ''));
  }

  /** A NACKed response left the client with what it had before: undo what is still ours. */
  private undo(sent: DeltaSent): void {
    for (const [name, before] of sent.before) {
      if (this.held.get(name) !== sent.after.get(name)) continue; // a later response changed it since
      if (before === undefined) this.held.delete(name);
      else this.held.set(name, before);
      this.reportedAbsent.delete(name);
    }
  }
}

function contentKey(resources: readonly Resource[], removed: readonly string[]): string {
  let text = '';
  for (const r of [...resources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) text += `+${r.name}\u0000${r.version}\n`;
  for (const name of [...removed].sort()) text += `-${name}\n`;
  return shortDigest(text);
}
