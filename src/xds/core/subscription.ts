/**
 * What a client subscribes to for one type on one stream: the names it asked for and
 * whether it is a wildcard subscriber. Pure functions shared by SotW and delta, one
 * comment per xds_protocol rule ("How the client specifies what resources to return" and "Incremental xDS").
 */
export interface Subscription {
  readonly wildcard: boolean;
  /** Explicit names, without "*". A wildcard subscriber may also name resources (xds_protocol, incremental xDS). */
  readonly names: ReadonlySet<string>;
  /** True once the client has named anything: the legacy wildcard meaning is then gone. */
  readonly everNamed: boolean;
}

export const WILDCARD = '*';

export const EMPTY_SUBSCRIPTION: Subscription = { wildcard: false, names: new Set(), everNamed: false };

export interface SubscriptionChange {
  next: Subscription;
  /** Explicit names the client asks for now that it did not ask for before. */
  added: string[];
  /** Names it no longer asks for (and that no wildcard covers). */
  removed: string[];
  /** The wildcard went from off to on: every resource the client does not hold is newly requested. */
  wildcardAdded: boolean;
  /** The wildcard went from on to off: what only the wildcard covered is no longer subscribed. */
  wildcardRemoved: boolean;
}

/** True if `name` is covered by the subscription. */
export function covers(sub: Subscription, name: string): boolean {
  return sub.wildcard || sub.names.has(name);
}

/**
 * The generated resources a response may carry, in order (SotW and delta alike):
 * - never the same name twice in one response (the client would NACK it);
 * - the client ignores unrequested resources except under a wildcard; don't send them.
 */
export function subscribedOnce<R extends { name: string }>(sub: Subscription, desired: readonly R[]): R[] {
  const seen = new Set<string>();
  const out: R[] = [];
  for (const r of desired) {
    if (seen.has(r.name) || !covers(sub, r.name)) continue;
    seen.add(r.name);
    out.push(r);
  }
  return out;
}

/**
 * SotW: every DiscoveryRequest carries the complete list of names (xds_protocol, how the client specifies what resources to return).
 * - Legacy wildcard: an empty list on a stream that has never named anything for this type
 *   means "*". Once any name was sent the legacy meaning is gone and an empty list means
 *   "unsubscribed from everything".
 * - Explicit wildcard: the name "*", possibly alongside explicit names.
 */
export function applySotwNames(prev: Subscription, resourceNames: readonly string[]): SubscriptionChange {
  const names = new Set<string>();
  let explicitWildcard = false;
  for (const name of resourceNames) {
    if (name === WILDCARD) explicitWildcard = true;
    else names.add(name);
  }
  const everNamed = prev.everNamed || resourceNames.length > 0;
  const wildcard = explicitWildcard || (resourceNames.length === 0 && !prev.everNamed);
  const next: Subscription = { wildcard, names, everNamed };
  const change = diffSubscriptions(prev, next);
  // A name the wildcard already covered is not newly requested: the client holds it.
  if (prev.wildcard) change.added = [];
  return change;
}

/**
 * Delta: subscriptions change by difference (xds_protocol, incremental xDS).
 * - Legacy wildcard: the first request of a type with no names to subscribe is a "*"
 *   subscription, which stays until the client unsubscribes "*".
 * - "*" in resource_names_subscribe / _unsubscribe turns the wildcard on / off.
 * - Unsubscribing a name never subscribed is a phantom unsubscribe: ignored.
 */
export function applyDeltaChanges(
  prev: Subscription,
  subscribe: readonly string[],
  unsubscribe: readonly string[],
  firstRequestOfType: boolean,
): SubscriptionChange {
  const names = new Set(prev.names);
  let wildcard = prev.wildcard;
  if (firstRequestOfType && subscribe.length === 0) wildcard = true;
  for (const name of subscribe) {
    if (name === WILDCARD) wildcard = true;
    else names.add(name);
  }
  for (const name of unsubscribe) {
    if (name === WILDCARD) wildcard = false;
    else names.delete(name);
  }
  const next: Subscription = { wildcard, names, everNamed: prev.everNamed || subscribe.length > 0 };
  const change = diffSubscriptions(prev, next);
  // xds_protocol, incremental: "Names in resource_names_subscribe that the client already has at the current version
  // must still be sent": a re-subscribe of an already subscribed name counts as added.
  const resubscribed = subscribe.filter((n) => n !== WILDCARD && prev.names.has(n) && next.names.has(n));
  if (resubscribed.length > 0) change.added = [...new Set([...change.added, ...resubscribed])];
  return change;
}

function diffSubscriptions(prev: Subscription, next: Subscription): SubscriptionChange {
  const added: string[] = [];
  const removed: string[] = [];
  for (const name of next.names) if (!prev.names.has(name)) added.push(name);
  for (const name of prev.names) if (!next.names.has(name) && !next.wildcard) removed.push(name);
  return {
    next,
    added,
    removed,
    wildcardAdded: next.wildcard && !prev.wildcard,
    wildcardRemoved: prev.wildcard && !next.wildcard,
  };
}
