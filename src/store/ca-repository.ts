import type { Fence } from './leader.js';

/**
 * The CA's state in the store: its roots and the rotation journal that says which root is
 * trusted and which signs when. The store keeps the journal as the CA wrote it (text) and
 * gives it a version; what the journal means is the CA's business.
 *
 * Guarantees:
 * - A root is written once and never overwritten or deleted; its private key is sealed with
 *   the store's key-encryption key and comes back in the clear only to this process.
 * - `commit` moves the journal from one version to the next and adds the step's new roots in
 *   one transaction. When another writer moved the journal first, nothing is written (not even
 *   the roots) and the current journal is returned: of several replicas racing to create the
 *   first root or to rotate, exactly one succeeds.
 */

export interface StoredRoot {
  /** The CA's id for it, e.g. root-1. */
  id: string;
  certPem: string;
  /** The PKCS#8 PEM private key, opened in this process. */
  keyPem: string;
  keyType: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  fingerprint256: string;
  createdAt: number;
}

export type NewRoot = Omit<StoredRoot, 'createdAt'>;

export interface StoredJournal {
  /** 1 for the first journal, one more for each commit. */
  version: number;
  text: string;
  updatedAt: number;
}

export interface CaState {
  /** Undefined while the store has never held a CA. */
  journal: StoredJournal | undefined;
  /** Every root, oldest first. */
  roots: StoredRoot[];
}

export interface CaCommit {
  /** The journal version this step was computed from; 0 when there is none yet. */
  expectedVersion: number;
  journalText: string;
  newRoots: NewRoot[];
  at: number;
  /** Required of rotation steps, which only the leader takes. */
  fence?: Fence;
}

export type CaCommitResult =
  | { committed: true; journal: StoredJournal }
  | { committed: false; current: StoredJournal | undefined };

export interface CaRepository {
  /** The journal and the roots, from one consistent snapshot. */
  read(): Promise<CaState>;
  commit(step: CaCommit): Promise<CaCommitResult>;
}
