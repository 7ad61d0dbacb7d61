/**
 * One replica at a time does the work that must happen once (root and token-key rotation,
 * pruning). Leadership is numbered: each new holder gets a higher term, and a once-only write
 * carries the writer's term as its fence, so a replica that lost the lead without knowing it
 * yet (its session died a moment ago) has its write refused instead of racing the new leader.
 */
export interface Fence {
  readonly term: number;
}

export interface LeaderElection {
  /** This replica's fence while it leads, undefined otherwise. */
  current(): Fence | undefined;
  /** Called with the new fence when this replica becomes leader, with undefined when it stops. */
  onChange(listener: (fence: Fence | undefined) => void): () => void;
}
