import { StoreInputError } from '../errors.js';
import type { Fence } from '../leader.js';
import { checkProxyId, type ProxyConnection, type ProxyListing, type ProxyRegistry, type ReplicaInfo } from '../proxy-registry.js';
import type { Database, Sql } from './database.js';
import { byCodeUnits, FOREIGN_KEY_VIOLATION, ms, sqlState } from './rows.js';

interface ReplicaRow { id: string; address: string; started_at: Date; heartbeat_at: Date }
interface ProxyRow { replica_id: string; proxy_id: string; connected_at: Date }

export class PgProxyRegistry implements ProxyRegistry {
  constructor(private readonly db: Database) {}

  async heartbeat(replica: ReplicaInfo, now: number): Promise<{ recreated: boolean }> {
    if (!/^[\x21-\x7e]{1,256}$/.test(replica.id)) throw new StoreInputError(`replica id ${JSON.stringify(replica.id.slice(0, 64))} is not 1 to 256 printable characters`);
    return this.db.write(async (sql) => {
      // xmax is 0 on a row version made by INSERT, not by the UPDATE of ON CONFLICT.
      const { rows } = await sql.query<{ inserted: boolean }>(
        `INSERT INTO meshd_replica (id, address, started_at, heartbeat_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at
         RETURNING (xmax = 0) AS inserted`,
        [replica.id, replica.address, new Date(replica.startedAt), new Date(now)],
      );
      return { recreated: rows[0]!.inserted };
    });
  }

  async connected(replicaId: string, proxies: readonly ProxyConnection[]): Promise<void> {
    checkProxies(proxies.map((p) => p.proxyId));
    if (proxies.length === 0) return;
    await this.db.write((sql) => insertProxies(sql, replicaId, proxies));
  }

  async disconnected(replicaId: string, proxyIds: readonly string[]): Promise<void> {
    if (proxyIds.length === 0) return;
    await this.db.write(async (sql) => {
      await sql.query('DELETE FROM meshd_proxy_connection WHERE replica_id = $1 AND proxy_id = ANY($2::text[])', [replicaId, [...proxyIds]]);
    });
  }

  async replaceAll(replicaId: string, proxies: readonly ProxyConnection[]): Promise<void> {
    checkProxies(proxies.map((p) => p.proxyId));
    await this.db.write(async (sql) => {
      await sql.query('DELETE FROM meshd_proxy_connection WHERE replica_id = $1', [replicaId]);
      if (proxies.length > 0) await insertProxies(sql, replicaId, proxies);
    });
  }

  async list(now: number, ttlMs: number): Promise<ProxyListing> {
    const { replicas, proxies } = await this.db.read(async (sql) => ({
      replicas: (await sql.query<ReplicaRow>('SELECT id, address, started_at, heartbeat_at FROM meshd_replica')).rows,
      proxies: (await sql.query<ProxyRow>('SELECT replica_id, proxy_id, connected_at FROM meshd_proxy_connection')).rows,
    }), { snapshot: true });
    const alive = new Map(replicas.map((r) => [r.id, ms(r.heartbeat_at) >= now - ttlMs]));
    return {
      replicas: replicas
        .map((r) => ({ id: r.id, address: r.address, startedAt: ms(r.started_at), heartbeatAt: ms(r.heartbeat_at), alive: alive.get(r.id)! }))
        .sort((a, b) => byCodeUnits(a.id, b.id)),
      proxies: proxies
        .map((p) => ({ proxyId: p.proxy_id, replicaId: p.replica_id, connectedAt: ms(p.connected_at), alive: alive.get(p.replica_id) ?? false }))
        .sort((a, b) => byCodeUnits(a.proxyId, b.proxyId) || byCodeUnits(a.replicaId, b.replicaId)),
    };
  }

  async expire(now: number, ttlMs: number, fence?: Fence): Promise<number> {
    return this.db.write(async (sql) => (await sql.query('DELETE FROM meshd_replica WHERE heartbeat_at < $1', [new Date(now - ttlMs)])).rowCount ?? 0,
      fence ? { fence } : {});
  }

  async remove(replicaId: string): Promise<void> {
    await this.db.write(async (sql) => { await sql.query('DELETE FROM meshd_replica WHERE id = $1', [replicaId]); });
  }
}

function checkProxies(ids: readonly string[]): void {
  for (const id of ids) {
    const problem = checkProxyId(id);
    if (problem) throw new StoreInputError(`${problem}; nothing was written`);
  }
}

async function insertProxies(sql: Sql, replicaId: string, batch: readonly ProxyConnection[]): Promise<void> {
  // One row per proxy id (the last wins): ON CONFLICT cannot touch a row twice in one statement.
  const proxies = [...new Map(batch.map((p) => [p.proxyId, p])).values()];
  try {
    await sql.query(
      `INSERT INTO meshd_proxy_connection (replica_id, proxy_id, connected_at)
       SELECT $1, p.id, p.at FROM unnest($2::text[], $3::timestamptz[]) AS p (id, at)
       ON CONFLICT (replica_id, proxy_id) DO UPDATE SET connected_at = EXCLUDED.connected_at`,
      [replicaId, proxies.map((p) => p.proxyId), proxies.map((p) => new Date(p.connectedAt))],
    );
  } catch (err) {
    if (sqlState(err) === FOREIGN_KEY_VIOLATION) {
      throw new StoreInputError(`replica ${replicaId} is not registered (its heartbeat expired or never came): heartbeat, then replaceAll its proxies; nothing was written`);
    }
    throw err;
  }
}
