import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { isTokenId } from '../auth/token-authority.js';
import type { TokenLedger } from '../auth/token-ledger.js';
import type { LeaderElection } from './leader.js';
import type { TokenRepository } from './token-repository.js';

/** A revocation whose token's expiry is unknown (`meshd token revoke ID` gives only the id) is kept this long. */
const UNKNOWN_EXPIRY = Date.UTC(9999, 11, 31);
/** A use record is kept this long past its token's expiry, beyond the clock tolerance of verification. */
const USE_RECORD_MARGIN_MS = 5 * 60_000;
/** The leader prunes use records of expired tokens at most this often. */
const PRUNE_EVERY_MS = 60_000;
/** The revocations kept for a store outage are re-read at most this often while the store answers. */
const REVOCATIONS_REFRESH_MS = 30_000;

export interface StoreTokenLedgerOptions {
  tokens: TokenRepository;
  clock: Clock;
  logger: Logger;
  /** Without it (a CLI command) nothing is pruned: pruning is the leading replica's. */
  leader?: LeaderElection;
}

/**
 * The join-token ledger of replicas sharing a store: every replica reads and writes the same use
 * records and revocations, so a single-use token is accepted by exactly one replica once
 * (PostgreSQL's unique key decides between concurrent first uses), and a revocation written by
 * `meshd token revoke --store` is refused by every replica at the token's next use.
 *
 * Each check goes to the store, because a cached "not revoked" is the answer a revocation must
 * overturn. While the store is unreachable, replicas keep serving what they read last, and so
 * does this ledger: a revocation check is answered from the revocations last read (at most
 * REVOCATIONS_REFRESH_MS old when the store went away; no revocation can be written meanwhile,
 * `meshd token revoke --store` needs the store too). A first use of a single-use token cannot be
 * decided without the store, so it throws and the authenticator refuses the token, saying so.
 */
export class StoreTokenLedger implements TokenLedger {
  private lastPruneAt = 0;
  /** The revocations last read, for checks while the store is unreachable; undefined before the first read. */
  private lastRevocations: { ids: ReadonlySet<string>; at: number } | undefined;

  constructor(private readonly options: StoreTokenLedgerOptions) {}

  /** Reads the revocations once (a replica does at start, so an outage right after start still has them). */
  async load(): Promise<void> {
    await this.refreshRevocations(this.options.clock.now());
  }

  async recordFirstUse(id: string, expiresAtMs: number): Promise<boolean> {
    const at = this.options.clock.now();
    const result = await this.options.tokens.consume({ tokenId: id, expiresAt: expiresAtMs, at });
    this.pruneIfLeading(at);
    return result.first;
  }

  async isRevoked(id: string): Promise<boolean> {
    // Not an id meshd issues: no revocation can name it (the store would refuse the id).
    if (!isTokenId(id)) return false;
    const now = this.options.clock.now();
    try {
      const revoked = await this.options.tokens.isRevoked(id);
      if (this.lastRevocations === undefined || now - this.lastRevocations.at >= REVOCATIONS_REFRESH_MS) {
        await this.refreshRevocations(now).catch(() => undefined);
      } else if (revoked) {
        // A revocation learned now is kept for an outage too, whatever the age of the last full read.
        this.lastRevocations = { ids: new Set([...this.lastRevocations.ids, id]), at: this.lastRevocations.at };
      }
      return revoked;
    } catch (err) {
      const last = this.lastRevocations;
      if (last === undefined) throw err;
      this.options.logger.warn({ token: id, revocationsReadAt: new Date(last.at).toISOString(), err: (err as Error).message },
        'the store is unreachable: token revocation checked against the revocations last read');
      return last.ids.has(id);
    }
  }

  async revoke(id: string): Promise<void> {
    if (!isTokenId(id)) throw new Error(`"${id.slice(0, 64)}" is not a token id (the jti printed by \`meshd token issue\`)`);
    await this.options.tokens.revoke({ tokenId: id, revokedAt: this.options.clock.now(), expiresAt: UNKNOWN_EXPIRY });
  }

  private async refreshRevocations(now: number): Promise<void> {
    const all = await this.options.tokens.revocations();
    this.lastRevocations = { ids: new Set(all.map((r) => r.tokenId)), at: now };
  }

  /** Use records of tokens expired a margin ago are dropped by the leader (with its fence), in the background. */
  private pruneIfLeading(now: number): void {
    const fence = this.options.leader?.current();
    if (!fence || now - this.lastPruneAt < PRUNE_EVERY_MS) return;
    this.lastPruneAt = now;
    this.options.tokens.prune(now - USE_RECORD_MARGIN_MS, fence).then(
      (removed) => { if (removed.uses > 0) this.options.logger.info({ removed: removed.uses }, 'pruned use records of expired single-use tokens'); },
      (err: unknown) => this.options.logger.warn({ err: (err as Error).message }, 'could not prune token use records; the next use of a single-use token tries again'),
    );
  }
}
