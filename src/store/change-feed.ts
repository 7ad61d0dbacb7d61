/**
 * How a replica learns that another one changed the store: after a write commits, every
 * replica's subscribers of that topic are called and re-read. Notifications carry no data,
 * only the topic, so a lost or coalesced one costs nothing but a delay: subscribers are also
 * called periodically and after the store comes back, and must then re-read everything.
 */

export type StoreTopic = 'ca' | 'tokens' | 'config' | 'bundles';

export const STORE_TOPICS: readonly StoreTopic[] = ['ca', 'tokens', 'config', 'bundles'];

/** Why a subscriber is called: a commit was announced, the periodic re-read, or the store came back. */
export type ChangeReason = 'notify' | 'periodic' | 'reconnect';

export interface ChangeFeed {
  /** Returns a function that unsubscribes. */
  subscribe(topic: StoreTopic, listener: (reason: ChangeReason) => void): () => void;
}
