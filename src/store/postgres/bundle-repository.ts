import { checkFederatedBundle, type BundleRepository, type FederatedBundle, type PutBundleResult } from '../bundle-repository.js';
import { StoreInputError } from '../errors.js';
import type { Database } from './database.js';
import { byCodeUnits, int, ms } from './rows.js';

interface BundleRow { trust_domain: string; bundle: string; sequence: string; fetched_at: Date }

const COLUMNS = 'trust_domain, bundle, sequence, fetched_at';

export class PgBundleRepository implements BundleRepository {
  constructor(private readonly db: Database) {}

  async list(): Promise<FederatedBundle[]> {
    const rows = await this.db.read(async (sql) => (await sql.query<BundleRow>(`SELECT ${COLUMNS} FROM meshd_federated_bundle`)).rows);
    return rows.map(bundleOf).sort((a, b) => byCodeUnits(a.trustDomain, b.trustDomain));
  }

  async get(trustDomain: string): Promise<FederatedBundle | undefined> {
    const rows = await this.db.read(async (sql) => (await sql.query<BundleRow>(`SELECT ${COLUMNS} FROM meshd_federated_bundle WHERE trust_domain = $1`, [trustDomain])).rows);
    return rows[0] && bundleOf(rows[0]);
  }

  async put(b: FederatedBundle): Promise<PutBundleResult> {
    const problem = checkFederatedBundle(b);
    if (problem) throw new StoreInputError(`the bundle cannot be stored, nothing was written: ${problem}`);
    return this.db.write<PutBundleResult>(async (sql, rollback) => {
      const { rows } = await sql.query(
        `INSERT INTO meshd_federated_bundle (${COLUMNS}) VALUES ($1, $2, $3, $4)
         ON CONFLICT (trust_domain) DO UPDATE SET bundle = EXCLUDED.bundle, sequence = EXCLUDED.sequence, fetched_at = EXCLUDED.fetched_at
         WHERE meshd_federated_bundle.sequence <= EXCLUDED.sequence
         RETURNING trust_domain`,
        [b.trustDomain, b.bundle, b.sequence, new Date(b.fetchedAt)],
      );
      if (rows.length === 1) return { stored: true };
      const current = (await sql.query<BundleRow>(`SELECT ${COLUMNS} FROM meshd_federated_bundle WHERE trust_domain = $1`, [b.trustDomain])).rows[0]!;
      return rollback({ stored: false, current: bundleOf(current) });
    }, { notify: ['bundles'] });
  }

  async remove(trustDomain: string): Promise<boolean> {
    return this.db.write(async (sql) => (await sql.query('DELETE FROM meshd_federated_bundle WHERE trust_domain = $1', [trustDomain])).rowCount === 1, { notify: ['bundles'] });
  }
}

function bundleOf(r: BundleRow): FederatedBundle {
  return { trustDomain: r.trust_domain, bundle: r.bundle, sequence: int(r.sequence), fetchedAt: ms(r.fetched_at) };
}
