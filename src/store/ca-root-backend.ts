import type { Logger } from '../common/logger.js';
import { CaMaterialError, errorMessage } from '../ca/errors.js';
import { parseJournal, serializeJournal } from '../ca/journal.js';
import type { FirstRoot, FirstRootMint, JournalRead, RootBackend, RotationPlanner } from '../ca/root-backend.js';
import type { RootRecord } from '../ca/rotation.js';
import { checkRootMaterial, type LoadedRoot } from '../ca/store.js';
import type { CaRepository, CaState, NewRoot } from './ca-repository.js';
import type { ChangeFeed } from './change-feed.js';
import type { StoreHealth } from './health.js';
import type { LeaderElection } from './leader.js';
import { StoreView } from './view.js';

export interface StoreRootBackendOptions {
  ca: CaRepository;
  feed: ChangeFeed;
  leader: LeaderElection;
  health: StoreHealth;
  logger: Logger;
  /** How messages name the store (its URL without the password). */
  location: string;
}

/**
 * The built-in CA's roots and journal in the shared store. Every replica reads the same
 * journal and roots, so all of them sign with the same root and serve the same bundle.
 *
 * - The first root: each replica that finds no journal mints one and commits it from journal
 *   version 0; the store lets exactly one commit land, and the others drop their minted root
 *   (never stored, never used) and adopt the winner's.
 * - Rotation: automatic rotation is the leader's (its fence goes with the commit, so a
 *   replica that lost the lead without knowing it has its write refused). An operator's
 *   `meshd ca rotate-root --store` commits from the version it read: if anyone rotated in
 *   between, nothing is written.
 * - Reads come from what was last read (a StoreView following the change feed), so a
 *   replica keeps signing with the roots it holds while the store is away.
 */
export class StoreRootBackend implements RootBackend {
  readonly location: string;
  readonly journalName: string;
  private readonly view: StoreView<CaState>;

  private constructor(private readonly options: StoreRootBackendOptions) {
    this.location = options.location;
    this.journalName = `the CA journal in ${options.location}`;
    this.view = new StoreView({
      feed: options.feed,
      topic: 'ca',
      load: () => options.ca.read(),
      versionOf: (state) => state.journal?.version ?? 0,
      logger: options.logger,
    });
  }

  /** Reads the store once (a failure is thrown: there is nothing to sign with yet). */
  static async open(options: StoreRootBackendOptions): Promise<StoreRootBackend> {
    const backend = new StoreRootBackend(options);
    await backend.view.start();
    return backend;
  }

  /** Called after the journal moved in the store (any replica's commit, or the periodic re-read). */
  onChange(listener: () => void): () => void {
    return this.view.onUpdate(() => listener());
  }

  close(): void {
    this.view.close();
  }

  async readJournal(): Promise<JournalRead | undefined> {
    const journal = this.view.current?.journal;
    if (!journal) return undefined;
    try {
      return { journal: parseJournal(journal.text), text: journal.text };
    } catch (e) {
      throw new CaMaterialError(`${this.journalName} (version ${journal.version}) is corrupt: ${errorMessage(e)}`, this.journalName, { cause: e });
    }
  }

  loadRoot(record: RootRecord, trustDomain: string): Promise<LoadedRoot> {
    const stored = this.view.current?.roots.find((r) => r.id === record.id);
    const name = `root ${record.id} in ${this.location}`;
    if (!stored) return Promise.reject(new CaMaterialError(`${this.journalName} names ${record.id}, which the store does not hold`, name));
    return checkRootMaterial({
      record, certPem: stored.certPem, readKey: () => Promise.resolve(stored.keyPem), trustDomain,
      certName: `${name} (certificate)`, keyName: `${name} (key)`, journalName: this.journalName,
    });
  }

  async createFirst(mint: FirstRootMint): Promise<JournalRead> {
    const existing = await this.readJournal();
    if (existing) return existing;
    const first = await mint();
    const result = await this.options.ca.commit({
      expectedVersion: 0, journalText: serializeJournal(first.journal), newRoots: [newRoot(first)], at: first.journal.roots[0]!.preparedAt,
    });
    if (!result.committed) this.options.logger.info('another replica created the first root at the same time; using that one');
    await this.reread();
    const read = await this.readJournal();
    if (!read) throw new CaMaterialError(`${this.journalName} is still missing after the first root was committed`, this.journalName);
    return read;
  }

  async rotate(plan: RotationPlanner, opts: { automatic: boolean }): Promise<RootRecord | undefined> {
    const fence = this.options.leader.current();
    if (opts.automatic && !fence) return undefined;
    // The store, not what was last read, is the truth: another replica may have rotated already.
    const state = await this.options.ca.read();
    if (!state.journal) throw new CaMaterialError(`${this.journalName} is missing`, this.journalName);
    const step = await plan(parseJournal(state.journal.text), state.roots.map((r) => r.id));
    if (!step) return undefined;
    const result = await this.options.ca.commit({
      expectedVersion: state.journal.version,
      journalText: serializeJournal(step.journal),
      newRoots: [newRoot(step)],
      at: step.record.preparedAt,
      ...(opts.automatic && fence ? { fence } : {}),
    });
    await this.reread();
    if (!result.committed) {
      if (opts.automatic) return undefined;
      throw new Error(`the CA journal moved to version ${result.current?.version ?? '?'} while this rotation was prepared (another replica or operator rotated); nothing was written`);
    }
    return step.journal.roots.find((r) => r.id === step.record.id);
  }

  mayRotateAutomatically(): boolean {
    return this.options.health.isUp && this.options.leader.current() !== undefined;
  }

  /** Reads the store now; the view keeps the last state when it cannot. */
  private reread(): Promise<void> {
    return this.view.refresh('notify');
  }
}

function newRoot(step: FirstRoot): NewRoot {
  return {
    id: step.record.id,
    certPem: step.minted.certPem,
    keyPem: step.minted.key.privateKeyPem,
    keyType: step.record.keyType,
    fingerprint256: step.record.fingerprint256,
  };
}
