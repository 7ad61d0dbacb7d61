import type { Fence } from './leader.js';

/**
 * Which replica holds which proxy, so `meshd proxy-status` can list every proxy of the mesh
 * and ask the replica that holds it for the details.
 *
 * A replica heartbeats its own row; its proxies' rows are alive while that heartbeat is.
 * (One write per replica per heartbeat, not one per proxy: 10,000 proxies cost nothing
 * between connects.) A replica that dies stops heartbeating; its rows are shown as not alive
 * once the heartbeat is older than the TTL, and `expire` removes them with the replica's row.
 *
 * Guarantees:
 * - `connected`/`disconnected` take batches; writing a proxy already recorded updates it.
 * - A replica whose row was expired (it was cut off for longer than the TTL) is told so by
 *   its next `heartbeat`, which re-creates the row: it must then `replaceAll` its proxies.
 */

export interface ReplicaInfo {
  id: string;
  /** Where its monitoring endpoint answers (host:port), for the details of its proxies. */
  address: string;
  startedAt: number;
}

export interface ReplicaRecord extends ReplicaInfo {
  heartbeatAt: number;
  alive: boolean;
}

export interface ProxyConnection {
  proxyId: string;
  connectedAt: number;
}

export interface ProxyRecord extends ProxyConnection {
  replicaId: string;
  alive: boolean;
}

export interface ProxyListing {
  replicas: ReplicaRecord[];
  /** By proxy id, then replica id: a proxy moving between replicas may briefly show on both. */
  proxies: ProxyRecord[];
}

export interface ProxyRegistry {
  /** Records this replica as alive at `now`; `recreated` when its row was gone (expired or first). */
  heartbeat(replica: ReplicaInfo, now: number): Promise<{ recreated: boolean }>;
  connected(replicaId: string, proxies: readonly ProxyConnection[]): Promise<void>;
  disconnected(replicaId: string, proxyIds: readonly string[]): Promise<void>;
  /** Makes the replica's recorded proxies exactly these (after it lost the store for a while). */
  replaceAll(replicaId: string, proxies: readonly ProxyConnection[]): Promise<void>;
  /** Everything recorded; `alive` judged by heartbeats at `now` with `ttlMs`. */
  list(now: number, ttlMs: number): Promise<ProxyListing>;
  /** Removes replicas (and their proxies) whose heartbeat is older than `ttlMs` at `now`; returns how many replicas. */
  expire(now: number, ttlMs: number, fence?: Fence): Promise<number>;
  /** A replica shutting down removes itself and its proxies. */
  remove(replicaId: string): Promise<void>;
}

/** Proxy ids are Envoy node ids (istio's sidecar~ip~pod.ns~ns.svc.cluster.local form and others). */
export function checkProxyId(id: string): string | undefined {
  if (id.length === 0 || id.length > 1024) return `a proxy id is 1 to 1024 characters, not ${id.length}`;
  if (id.includes('\0')) return 'a proxy id cannot contain NUL';
  return undefined;
}
