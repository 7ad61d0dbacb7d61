import type { Logger } from '../common/logger.js';
import { CaMaterialError } from './errors.js';
import { recoverFirstRoot } from './first-root-recovery.js';
import type { MintedRoot } from './root-mint.js';
import type { Journal, RootRecord } from './rotation.js';
import { RootStore, type LoadedRoot } from './store.js';

/**
 * Where the built-in CA keeps its roots and rotation journal: the data dir (one process) or a
 * shared store (several replicas). The authority decides what to write; the backend makes each
 * write all-or-nothing and serialised against every other writer, and never overwrites a root.
 */
export interface RootBackend {
  /** How messages and `meshd ca status` name the place (a directory, or the store). */
  readonly location: string;
  readonly journalName: string;
  /** The journal in force, or undefined when no CA was ever created there. */
  readJournal(): Promise<JournalRead | undefined>;
  /** One root's certificate and key, checked against its record (store.ts checkRootMaterial). */
  loadRoot(record: RootRecord, trustDomain: string): Promise<LoadedRoot>;
  /**
   * Creates the first root with `mint` unless a CA exists (or another writer creates one
   * first); returns the journal in force either way.
   */
  createFirst(mint: FirstRootMint): Promise<JournalRead>;
  /**
   * One rotation step: `plan` sees the journal in force and the root ids already taken, and
   * returns the next journal with its new root (or undefined: nothing to do). The step is
   * written whole or not at all; undefined when nothing was written.
   */
  rotate(plan: RotationPlanner, opts: { automatic: boolean }): Promise<RootRecord | undefined>;
  /** Whether automatic rotation is this process's job now (a store's leader; always for a data dir). */
  mayRotateAutomatically(): boolean;
}

export interface JournalRead {
  journal: Journal;
  text: string;
}

export interface FirstRoot {
  journal: Journal;
  record: RootRecord;
  minted: MintedRoot;
}

export type FirstRootMint = () => Promise<FirstRoot>;

export type RotationPlanner = (current: Journal, takenIds: readonly string[]) => Promise<FirstRoot | undefined>;

/** The data dir's CA (store.ts): files written atomically under the CA lock file. */
export class FileRootBackend implements RootBackend {
  private readonly store: RootStore;

  constructor(dataDir: string, private readonly logger: Logger, private readonly trustDomain: string, private readonly now: () => number) {
    this.store = new RootStore(dataDir, logger);
  }

  get location(): string {
    return this.store.caDir;
  }

  get journalName(): string {
    return this.store.journalPath;
  }

  readJournal(): Promise<JournalRead | undefined> {
    return this.store.readJournal();
  }

  loadRoot(record: RootRecord, trustDomain: string): Promise<LoadedRoot> {
    return this.store.loadRoot(record, trustDomain);
  }

  async createFirst(mint: FirstRootMint): Promise<JournalRead> {
    const existing = await this.store.readJournal();
    if (existing) return existing;
    return this.store.withLock(async () => {
      const { store } = this;
      const raced = await store.readJournal(); // another process may have created it meanwhile
      if (raced) return raced;
      const leftovers = await store.rootDirectories();
      if (leftovers.length > 0) {
        // Only what a first start killed half-way leaves is completed or set aside; anything else stops start-up.
        const recovered = await recoverFirstRoot(store, leftovers, { trustDomain: this.trustDomain, now: this.now(), logger: this.logger });
        if (recovered.action === 'completed') return (await store.readJournal())!;
      }
      const first = await mint();
      await store.writeRoot(first.record.id, first.minted);
      await store.writeJournal(first.journal);
      return (await store.readJournal())!;
    });
  }

  rotate(plan: RotationPlanner): Promise<RootRecord | undefined> {
    return this.store.withLock(async () => {
      // The journal on disk is the truth: another process may have rotated already.
      const current = await this.store.readJournal();
      if (!current) throw new CaMaterialError(`${this.store.journalPath} is missing`, this.store.journalPath);
      const onDisk = await this.store.rootDirectories();
      const step = await plan(current.journal, [...current.journal.roots.map((r) => r.id), ...onDisk]);
      if (!step) return undefined;
      await this.store.writeRoot(step.record.id, step.minted);
      await this.store.writeJournal(step.journal);
      return step.journal.roots.find((r) => r.id === step.record.id);
    });
  }

  mayRotateAutomatically(): boolean {
    return true;
  }
}
