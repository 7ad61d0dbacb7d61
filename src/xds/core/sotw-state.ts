import type { Resource } from './types.js';
import type { ErrorDetail, SotwRequest } from './requests.js';
import { applySotwNames, covers, subscribedOnce, type SubscriptionChange } from './subscription.js';
import { TypeState, type SentSummary } from './type-state.js';
import { viewVersion } from './resource.js';

/** One response as sent, kept until the client answers it. */
export interface SotwSent extends SentSummary {
  /** The client's view if it accepts this response (the state's own map: see SotwTypeState.acked). */
  readonly view: Map<string, Resource>;
}

export type SotwOutcome =
  | { kind: 'stale'; nonce: string }
  | {
    kind: 'processed';
    /** The response this request ACKed, if any. */
    acked?: SotwSent;
    /** The response this request NACKed, if any. */
    nacked?: { sent: SotwSent; detail: ErrorDetail };
    /** Generate and (maybe) respond: first request of the type, or newly requested names. */
    generate: boolean;
    change: SubscriptionChange;
  };

export interface SotwPlan {
  resources: Resource[];
  /** Names whose version is new to the client (for LDS/CDS a subset of `resources`). */
  updated: string[];
  version: string;
  view: Map<string, Resource>;
}

/** The version of a generator's whole answer, once per answer (generators return shared arrays). */
const versionOfAnswer = new WeakMap<readonly Resource[], string>();

/**
 * The state-of-the-world protocol for one type on one stream. Pure: no I/O, no clock
 * (times are passed in), so every rule is unit-tested without gRPC. What it shares with
 * delta (subscription, ACK/NACK records, the NACK memory) is in type-state.ts.
 */
export class SotwTypeState extends TypeState<SotwSent> {
  /** The client's view: what it holds if it accepted what we sent. */
  private held = new Map<string, Resource>();
  /**
   * The view at the last ACK: what the client holds after a NACK. It is the acknowledged
   * response's own view, not a copy: a view is replaced, never changed, except that names
   * leaving the subscription are deleted from `held` and `acked` alike.
   */
  private acked = new Map<string, Resource>();
  /** Newly requested names: sent even when unchanged (xds_protocol). Made when needed, dropped once sent. */
  private forced: Set<string> | undefined;

  constructor(typeUrl: string, readonly fullState: boolean) {
    super(typeUrl);
  }

  /**
   * Applies one request. `issued` tells whether this stream produced a nonce.
   */
  receive(request: SotwRequest, issued: (nonce: string) => boolean): SotwOutcome {
    // xds_protocol: a nonce this stream never issued (a reconnect, maybe to another replica) is "no nonce yet".
    const nonce = request.responseNonce !== '' && issued(request.responseNonce) ? request.responseNonce : '';
    // xds_protocol stale nonce: a request answering anything but the latest response of this type
    // is superseded; Envoy does not expect an answer, and it will send the latest again.
    if (nonce !== '' && nonce !== this.latest?.nonce) return { kind: 'stale', nonce };

    const first = this.requestCount === 0;
    this.requestCount += 1;
    let acked: SotwSent | undefined;
    let nacked: { sent: SotwSent; detail: ErrorDetail } | undefined;
    const latest = this.latest;
    if (nonce !== '' && latest && latest.outcome === 'pending') {
      // xds_protocol: ACK vs NACK by the presence of error_detail, never by comparing versions
      // (they legitimately match when a newly subscribed resource is the one rejected).
      if (request.errorDetail) {
        latest.outcome = 'nacked';
        nacked = { sent: latest, detail: request.errorDetail };
        // The client kept what it had accepted before; never send this content again.
        this.held = this.acked;
        // Full-state types: the whole set is the unit; other types: each resource is.
        this.rememberRejected(latest.version, latest.names.map((name) => [name, latest.view.get(name)!.version] as const));
      } else {
        latest.outcome = 'acked';
        acked = latest;
        this.acked = latest.view;
      }
    }

    const change = applySotwNames(this.subscription, request.resourceNames);
    this.subscription = change.next;
    for (const name of change.removed) {
      // An unsubscribed name is forgotten, so a later re-subscribe sends it again.
      this.held.delete(name);
      this.acked.delete(name);
      this.forced?.delete(name);
    }
    if (change.wildcardRemoved) this.pruneToSubscription();
    // xds_protocol: when the set of names changes, resend every newly requested resource, even unchanged.
    for (const name of change.added) (this.forced ??= new Set()).add(name);
    if (first) this.mustAnswer = true;
    // An ACK never triggers a send (xds_protocol: "send only when the resources actually changed");
    // a NACK neither: the next real change is sent as usual by a push.
    const generate = first || change.added.length > 0 || change.wildcardAdded;
    return { kind: 'processed', acked, nacked, generate, change };
  }

  /**
   * Makes the next plan include these names even if unchanged (xds_protocol eventual consistency: after a cluster
   * changes, Envoy needs a fresh ClusterLoadAssignment to finish warming it).
   * Returns how many names the subscription covers.
   */
  force(names: Iterable<string>): number {
    let n = 0;
    for (const name of names) if (covers(this.subscription, name) && this.held.has(name)) { (this.forced ??= new Set()).add(name); n += 1; }
    return n;
  }

  /**
   * What to send, given everything the generator has for the subscription now;
   * undefined when nothing needs sending.
   */
  plan(desired: readonly Resource[]): SotwPlan | undefined {
    const wanted = subscribedOnce(this.subscription, desired);
    const seen = new Set(wanted.map((r) => r.name));
    this.pruneToSubscription();
    const forced = this.forced;
    this.forced = undefined; // whatever happens below, this plan answers them
    const differs = (r: Resource) => this.held.get(r.name)?.version !== r.version || (forced !== undefined && forced.has(r.name));

    let resources: Resource[];
    let updated: string[];
    let view: Map<string, Resource>;
    if (this.fullState) {
      // xds_protocol: LDS and CDS carry the full set in every response; a missing name means deleted.
      // A newly requested name is answered even if it does not exist: its absence from a
      // full-state response tells the client at once (no 15 s does-not-exist timer).
      let changed = (forced !== undefined && forced.size > 0) || wanted.some(differs);
      if (!changed) for (const name of this.held.keys()) if (!seen.has(name)) { changed = true; break; }
      if (!changed && !this.mustAnswer) return undefined;
      resources = wanted;
      updated = wanted.filter((r) => this.held.get(r.name)?.version !== r.version).map((r) => r.name);
      view = new Map(wanted.map((r) => [r.name, r]));
    } else {
      // xds_protocol: other types (EDS, RDS, SDS) may carry only changed or newly requested resources.
      // A requested name with no resource yet is simply absent; it is sent when it appears.
      // No empty response: Envoy rejects an SDS/EDS update without the resource it asked for.
      // NACK policy: a resource version this stream rejected is never sent to it again, not
      // even when re-requested; the next version of it is. (Envoy applies the other resources
      // of a partly rejected response, so they need not be repeated either.)
      resources = wanted.filter((r) => {
        if (!differs(r)) return false;
        if (!this.rejectedVersion(r.name, r.version)) return true;
        this.suppressed += 1;
        return false;
      });
      if (resources.length === 0) return undefined;
      updated = resources.filter((r) => this.held.get(r.name)?.version !== r.version).map((r) => r.name);
      view = new Map(this.held);
      for (const r of resources) view.set(r.name, r);
    }
    let version: string;
    if (this.fullState && resources.length === desired.length && resources.every((r, i) => r === desired[i])) {
      version = versionOfAnswer.get(desired) ?? viewVersion(view);
      versionOfAnswer.set(desired, version);
    } else {
      version = viewVersion(view);
    }
    // xds_protocol NACK policy: content this stream rejected is never sent to it again; we wait
    // for a real change (a different version), which is then sent as usual. For LDS/CDS the
    // whole set is the unit (a response without a resource would delete it).
    if (this.wasRejected(version) && !this.mustAnswer) { this.suppressed += 1; return undefined; }
    return { resources, updated, version, view };
  }

  commit(plan: SotwPlan, nonce: string, sentAt: number, queuedAt: number, pushed: boolean): SotwSent {
    this.held = plan.view;
    this.mustAnswer = false;
    this.latest = {
      nonce, version: plan.version, view: plan.view, names: plan.resources.map((r) => r.name),
      sentAt, queuedAt, pushed, outcome: 'pending',
    };
    return this.latest;
  }

  status(): 'SYNCED' | 'STALE' | 'NOT SENT' {
    if (!this.latest) return 'NOT SENT';
    return this.latest.outcome === 'acked' ? 'SYNCED' : 'STALE';
  }

  heldVersions(): Map<string, string> {
    return new Map([...this.held].map(([name, r]) => [name, r.version]));
  }

  private pruneToSubscription(): void {
    if (this.subscription.wildcard) return;
    for (const name of [...this.held.keys()]) if (!this.subscription.names.has(name)) this.held.delete(name);
    for (const name of [...this.acked.keys()]) if (!this.subscription.names.has(name)) this.acked.delete(name);
  }
}
