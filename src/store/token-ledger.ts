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
 * Each check goes to the store; nothing is cached, because a cached "not revoked" is the answer
 * a revocation must overturn. With the store unreachable the check throws, and the authenticator
 * refuses the token saying so: a join token is for first contact, and workloads that already hold
 * an SVID renew with it, which never needs the ledger.
 */
export class StoreTokenLedger implements TokenLedger {
  private lastPruneAt = 0;

  constructor(private readonly options: StoreTokenLedgerOptions) {}

  async recordFirstUse(id: string, expiresAtMs: number): Promise<boolean> {
    const at = this.options.clock.now();
    const result = await this.options.tokens.consume({ tokenId: id, expiresAt: expiresAtMs, at });
    this.pruneIfLeading(at);
    return result.first;
  }

  async isRevoked(id: string): Promise<boolean> {
    // Not an id meshd issues: no revocation can name it (the store would refuse the id).
    if (!isTokenId(id)) return false;
    return this.options.tokens.isRevoked(id);
  }

  async revoke(id: string): Promise<void> {
    if (!isTokenId(id)) throw new Error(`"${id.slice(0, 64)}" is not a token id (the jti printed by \`meshd token issue\`)`);
    await this.options.tokens.revoke({ tokenId: id, revokedAt: this.options.clock.now(), expiresAt: UNKNOWN_EXPIRY });
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
