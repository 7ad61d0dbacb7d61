import type { BundleRepository } from './bundle-repository.js';
import type { CaRepository } from './ca-repository.js';
import type { ChangeFeed } from './change-feed.js';
import type { ConfigRepository } from './config-repository.js';
import type { StoreHealth } from './health.js';
import type { LeaderElection } from './leader.js';
import type { ProxyRegistry } from './proxy-registry.js';
import type { TokenRepository } from './token-repository.js';

/**
 * Where a meshd's state lives: the local data dir (one process) or PostgreSQL (any number of
 * replicas). The repositories are the only way in; each says what it guarantees.
 *
 * Reads go to the store every time. A caller that must keep serving while the store is away
 * holds what it last read (see StoreView) and refreshes it when the feed says so. Writes fail
 * with StoreUnavailableError when the store cannot be reached, saying whether anything changed.
 */
export interface MeshStore {
  readonly ca: CaRepository;
  readonly tokens: TokenRepository;
  readonly config: ConfigRepository;
  readonly bundles: BundleRepository;
  readonly proxies: ProxyRegistry;
  readonly feed: ChangeFeed;
  readonly leader: LeaderElection;
  readonly health: StoreHealth;
  close(): Promise<void>;
}
