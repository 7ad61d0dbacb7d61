import { readdir, readFile, unlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import { checkTrustDomain } from '../ca/spiffe-id.js';
import { MAX_BUNDLE_BYTES } from './bundle-document.js';

/**
 * Where the last good bundle of each foreign trust domain is kept, so a restart while an
 * endpoint is down still trusts it (SPIFFE Federation §4.2: "store the latest bundle").
 * Only bundles fetched from an endpoint are stored; one written in the config is the config's.
 * A record is re-validated when loaded, exactly as a fetched document is.
 */
export interface StoredBundle {
  trustDomain: string;
  /** The SPIFFE bundle document as the endpoint served it. */
  document: string;
  /** When it was last confirmed by the endpoint (ms since the epoch). */
  fetchedAt: number;
  /** The endpoint URL it came from, for the log. */
  endpoint: string;
  /**
   * Digest of the configured bundle in force when it was stored: a config whose bundle
   * differs at the next start replaces it (how an operator re-bootstraps a federation).
   */
  configuredDigest?: string;
}

export interface FederatedBundleStore {
  /** Every readable record; `problems` lists the ones skipped, for the log. */
  load(): Promise<{ records: StoredBundle[]; problems: string[] }>;
  save(record: StoredBundle): Promise<void>;
  /** Forget a trust domain (its federation ended); a missing record is not an error. */
  remove(trustDomain: string): Promise<void>;
}

const FORMAT = 1;
const SUFFIX = '.json';

interface FileRecord {
  format: number;
  trustDomain: string;
  fetchedAt: string;
  endpoint: string;
  configuredDigest?: string;
  bundle: string;
}

function fromFile(name: string, text: string): StoredBundle {
  const r = JSON.parse(text) as Partial<FileRecord>;
  if (r.format !== FORMAT) throw new Error(`unknown format ${JSON.stringify(r.format)}`);
  if (typeof r.trustDomain !== 'string' || `${r.trustDomain}${SUFFIX}` !== name) throw new Error('trustDomain does not match the file name');
  checkTrustDomain(r.trustDomain);
  const fetchedAt = typeof r.fetchedAt === 'string' ? Date.parse(r.fetchedAt) : NaN;
  if (Number.isNaN(fetchedAt)) throw new Error('fetchedAt is not a time');
  if (typeof r.endpoint !== 'string' || typeof r.bundle !== 'string') throw new Error('endpoint and bundle must be strings');
  if (r.configuredDigest !== undefined && typeof r.configuredDigest !== 'string') throw new Error('configuredDigest must be a string');
  const out: StoredBundle = { trustDomain: r.trustDomain, document: r.bundle, fetchedAt, endpoint: r.endpoint };
  if (r.configuredDigest !== undefined) out.configuredDigest = r.configuredDigest;
  return out;
}

/**
 * One file per trust domain, <data-dir>/federation/<trust-domain>.json, written atomically
 * (a crash leaves the old record or the new one). A trust domain name is [a-z0-9._-], so the
 * ".json" suffix keeps even ".." a plain file name inside the directory.
 */
export class DataDirBundleStore implements FederatedBundleStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'federation');
  }

  private path(trustDomain: string): string {
    checkTrustDomain(trustDomain);
    return join(this.dir, `${trustDomain}${SUFFIX}`);
  }

  async load(): Promise<{ records: StoredBundle[]; problems: string[] }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], problems: [] };
      throw err;
    }
    const records: StoredBundle[] = [];
    const problems: string[] = [];
    for (const name of names.sort()) {
      if (!name.endsWith(SUFFIX) || name.startsWith('.')) continue;
      const path = join(this.dir, name);
      try {
        const st = await stat(path);
        if (!st.isFile()) throw new Error('not a regular file');
        // The record escapes the document as a JSON string: at most ~6 bytes per byte.
        if (st.size > 6 * MAX_BUNDLE_BYTES + 4096) throw new Error(`${st.size} bytes is too large for a stored bundle`);
        records.push(fromFile(name, await readFile(path, 'utf8')));
      } catch (err) {
        problems.push(`${path}: ${(err as Error).message}`);
      }
    }
    return { records, problems };
  }

  async save(record: StoredBundle): Promise<void> {
    const file: FileRecord = {
      format: FORMAT,
      trustDomain: record.trustDomain,
      fetchedAt: new Date(record.fetchedAt).toISOString(),
      endpoint: record.endpoint,
      ...(record.configuredDigest !== undefined ? { configuredDigest: record.configuredDigest } : {}),
      bundle: record.document,
    };
    // A bundle is public material (the foreign trust domain's CA certificates).
    await writeFileAtomic(this.path(record.trustDomain), `${JSON.stringify(file, null, 2)}\n`, { mode: 0o644 });
  }

  async remove(trustDomain: string): Promise<void> {
    try {
      await unlink(this.path(trustDomain));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
