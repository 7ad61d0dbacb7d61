import { StoreInputError } from '../errors.js';
import type { KeyRing } from '../key-ring.js';
import type { Fence } from '../leader.js';
import { checkTokenId, type ConsumeResult, type NewSigningKey, type Revocation, type StoredSigningKey, type TokenRepository, type TokenUse } from '../token-repository.js';
import type { Database } from './database.js';
import { byCodeUnits, ms } from './rows.js';

const KEY_TABLE = 'meshd_token_key';

interface KeyRow { id: string; algorithm: string; sealed_key: string; created_at: Date }
interface RevocationRow { token_id: string; revoked_at: Date; expires_at: Date }

export class PgTokenRepository implements TokenRepository {
  constructor(private readonly db: Database, private readonly keys: KeyRing) {}

  async signingKeys(): Promise<StoredSigningKey[]> {
    const rows = await this.db.read(async (sql) => (await sql.query<KeyRow>('SELECT id, algorithm, sealed_key, created_at FROM meshd_token_key')).rows);
    return rows
      .map((r) => ({ id: r.id, algorithm: r.algorithm, keyPem: this.keys.open(r.sealed_key, { table: KEY_TABLE, id: r.id }), createdAt: ms(r.created_at) }))
      .sort((a, b) => a.createdAt - b.createdAt || byCodeUnits(a.id, b.id));
  }

  async addSigningKey(key: NewSigningKey, fence?: Fence): Promise<boolean> {
    if (!/^[\x21-\x7e]{1,128}$/.test(key.id)) throw new StoreInputError(`signing key id ${JSON.stringify(key.id.slice(0, 64))} is not 1 to 128 printable characters`);
    if (!/^[A-Z0-9]{2,16}$/.test(key.algorithm)) throw new StoreInputError(`"${key.algorithm.slice(0, 32)}" is not a JOSE algorithm name`);
    if (!key.keyPem.includes('PRIVATE KEY')) throw new StoreInputError(`signing key ${key.id}: the key is not a PEM private key`);
    const sealed = this.keys.seal(key.keyPem, { table: KEY_TABLE, id: key.id });
    return this.db.write(async (sql) => {
      const { rows } = await sql.query(
        `INSERT INTO meshd_token_key (id, algorithm, sealed_key, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [key.id, key.algorithm, sealed, new Date(key.createdAt)],
      );
      return rows.length === 1;
    }, { notify: ['tokens'], ...(fence ? { fence } : {}) });
  }

  async removeSigningKey(id: string, fence?: Fence): Promise<boolean> {
    return this.db.write(async (sql) => (await sql.query('DELETE FROM meshd_token_key WHERE id = $1', [id])).rowCount === 1,
      { notify: ['tokens'], ...(fence ? { fence } : {}) });
  }

  async consume(use: TokenUse): Promise<ConsumeResult> {
    refuseBadId(use.tokenId);
    return this.db.write(async (sql) => {
      // Concurrent inserts of one id: the second waits for the first to commit, then does nothing.
      const inserted = await sql.query(
        `INSERT INTO meshd_token_use (token_id, used_at, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (token_id) DO NOTHING RETURNING token_id`,
        [use.tokenId, new Date(use.at), new Date(use.expiresAt)],
      );
      if (inserted.rows.length === 1) return { first: true } as const;
      const { rows } = await sql.query<{ used_at: Date }>('SELECT used_at FROM meshd_token_use WHERE token_id = $1', [use.tokenId]);
      return { first: false, firstUsedAt: ms(rows[0]!.used_at) } as const;
    });
  }

  async revoke(revocation: Revocation): Promise<void> {
    refuseBadId(revocation.tokenId);
    await this.db.write(async (sql) => {
      await sql.query(
        `INSERT INTO meshd_token_revocation (token_id, revoked_at, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (token_id) DO NOTHING`,
        [revocation.tokenId, new Date(revocation.revokedAt), new Date(revocation.expiresAt)],
      );
    }, { notify: ['tokens'] });
  }

  async revocations(): Promise<Revocation[]> {
    const rows = await this.db.read(async (sql) => (await sql.query<RevocationRow>('SELECT token_id, revoked_at, expires_at FROM meshd_token_revocation')).rows);
    return rows.map((r) => ({ tokenId: r.token_id, revokedAt: ms(r.revoked_at), expiresAt: ms(r.expires_at) })).sort((a, b) => byCodeUnits(a.tokenId, b.tokenId));
  }

  async isRevoked(tokenId: string): Promise<boolean> {
    refuseBadId(tokenId);
    return this.db.read(async (sql) => (await sql.query('SELECT 1 FROM meshd_token_revocation WHERE token_id = $1', [tokenId])).rows.length === 1);
  }

  async prune(now: number, fence?: Fence): Promise<{ uses: number; revocations: number }> {
    return this.db.write(async (sql) => ({
      uses: (await sql.query('DELETE FROM meshd_token_use WHERE expires_at < $1', [new Date(now)])).rowCount ?? 0,
      revocations: (await sql.query('DELETE FROM meshd_token_revocation WHERE expires_at < $1', [new Date(now)])).rowCount ?? 0,
    }), fence ? { fence } : {});
  }
}

function refuseBadId(id: string): void {
  const problem = checkTokenId(id);
  if (problem) throw new StoreInputError(problem);
}
