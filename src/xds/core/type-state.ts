import type { GenerateRequest } from './types.js';
import type { ErrorDetail } from './requests.js';
import { clip, MAX_NACK_MESSAGE_CHARS } from './limits.js';
import { EMPTY_SUBSCRIPTION, type Subscription } from './subscription.js';

/**
 * What the state-of-the-world and delta protocols keep alike for one type on one stream
 * (sotw-state.ts, delta-state.ts): the subscription, the latest response and its answer for
 * the debug view, and the memory of rejected content behind the NACK policy. Pure, like both.
 */

/** What ACK/NACK bookkeeping needs of a sent response (SotW or delta). */
export interface SentSummary {
  readonly nonce: string;
  readonly version: string;
  readonly names: readonly string[];
  readonly sentAt: number;
  /** When the push (or request) that produced it was queued: convergence is measured from here. */
  readonly queuedAt: number;
  readonly pushed: boolean;
  outcome: 'pending' | 'acked' | 'nacked';
}

export interface NackRecord {
  nonce: string;
  version: string;
  message: string;
  code: number;
  at: number;
  names: readonly string[];
}

/** How many rejected responses a stream remembers per type. */
const REJECTED_MEMORY = 16;

export abstract class TypeState<Sent extends SentSummary> {
  subscription: Subscription = EMPTY_SUBSCRIPTION;
  requestCount = 0;
  latest: Sent | undefined;
  lastAck: { version: string; at: number; latencyMs: number } | undefined;
  lastNack: NackRecord | undefined;
  /** Responses (or resources) not sent because they would repeat rejected content. */
  suppressed = 0;

  /** The first request of a type is always answered (xds_protocol, ACK and NACK semantics), even with an empty set. */
  protected mustAnswer = false;
  // The NACK memory is made on the first NACK: most streams never send one, and 10,000 streams
  // holding empty containers is memory the garbage collector copies and traces for nothing.
  /** name → the version of it the client rejected: never sent to this stream again. */
  private rejectedResources: Map<string, string> | undefined;
  /** Whole responses the client rejected (SotW versions, delta content keys), newest last. */
  private rejected: string[] | undefined;

  constructor(readonly typeUrl: string) {}

  generateRequest(): GenerateRequest {
    return { names: this.subscription.wildcard ? undefined : this.subscription.names };
  }

  recordAck(sent: SentSummary, at: number): void {
    this.lastAck = { version: sent.version, at, latencyMs: at - sent.sentAt };
  }

  /** The client's message is kept cut (limits.ts): it is the client's text, shown on /debug/connections. */
  recordNack(sent: SentSummary, detail: ErrorDetail, at: number): void {
    this.lastNack = { nonce: sent.nonce, version: sent.version, message: clip(detail.message, MAX_NACK_MESSAGE_CHARS), code: detail.code, at, names: sent.names };
  }

  /** SYNCED: the latest response was ACKed; STALE: sent, not (or negatively) acknowledged. */
  abstract status(): 'SYNCED' | 'STALE' | 'NOT SENT';

  /** Versions the client holds, per resource, as far as we know. */
  abstract heldVersions(): Map<string, string>;

  /** xds_protocol NACK policy: remembers a rejected response and the resource versions in it. */
  protected rememberRejected(key: string, resources: Iterable<readonly [string, string | undefined]>): void {
    const rejected = (this.rejected ??= []);
    rejected.push(key);
    if (rejected.length > REJECTED_MEMORY) rejected.shift();
    const byName = (this.rejectedResources ??= new Map());
    for (const [name, version] of resources) if (version !== undefined) byName.set(name, version);
  }

  /** True when the client rejected this version of this resource (never sent to it again). */
  protected rejectedVersion(name: string, version: string): boolean {
    return this.rejectedResources !== undefined && this.rejectedResources.get(name) === version;
  }

  /** True when a response with this key was rejected (and so is not sent again unless asked). */
  protected wasRejected(key: string): boolean {
    return this.rejected !== undefined && this.rejected.includes(key);
  }
}
