/**
 * The mesh config in the store: the whole set of documents a config dir would hold (file name
 * and text), versioned as a set.
 *
 * Guarantees:
 * - `apply` replaces the whole set in one transaction: a reader sees the old set or the new
 *   one, never a mix. It succeeds only from the version the caller read (`expectedVersion`),
 *   so of two concurrent applies from the same version exactly one lands and the other is
 *   told which version is now in force. Applying the set already in force writes nothing.
 * - A set the store cannot hold (see `checkConfigDocuments`) is refused whole.
 * - The last `CONFIG_VERSIONS_KEPT` versions are kept, so an operator can see what changed.
 */

export interface ConfigDocument {
  /** A file name as in a config dir: no directory part. */
  name: string;
  text: string;
}

export interface ConfigSet {
  version: number;
  appliedAt: number;
  /** Who applied it, e.g. a user or replica id: shown by `meshd config get`. */
  appliedBy: string;
  /** Sorted by name. */
  documents: ConfigDocument[];
}

export interface ApplyOptions {
  /** The version the caller's change was computed from; 0 when the store holds no config. */
  expectedVersion: number;
  appliedBy: string;
  at: number;
}

export type ApplyResult =
  | { outcome: 'applied'; set: ConfigSet }
  | { outcome: 'unchanged'; set: ConfigSet }
  | { outcome: 'conflict'; currentVersion: number };

export interface ConfigRepository {
  /** The set in force, or undefined when none was ever applied. */
  current(): Promise<ConfigSet | undefined>;
  apply(documents: readonly ConfigDocument[], options: ApplyOptions): Promise<ApplyResult>;
}

export const CONFIG_VERSIONS_KEPT = 10;
export const MAX_CONFIG_DOCUMENTS = 10_000;
export const MAX_CONFIG_SET_BYTES = 64 * 1024 * 1024;
/** A config dir's file name: not hidden (no leading dot), no directory part, at most 255 bytes. */
const DOCUMENT_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/** Every reason the store cannot hold this set, in document order; empty when it can. */
export function checkConfigDocuments(documents: readonly ConfigDocument[]): string[] {
  const problems: string[] = [];
  if (documents.length > MAX_CONFIG_DOCUMENTS) problems.push(`${documents.length} documents; a config set holds at most ${MAX_CONFIG_DOCUMENTS}`);
  const seen = new Set<string>();
  let bytes = 0;
  for (const [i, doc] of documents.entries()) {
    const label = DOCUMENT_NAME.test(doc.name) ? doc.name : `document ${i + 1}`;
    if (!DOCUMENT_NAME.test(doc.name) || Buffer.byteLength(doc.name) > 255) {
      problems.push(`${label}: the name ${JSON.stringify(doc.name.slice(0, 64))} is not a plain file name (letters, digits, ".", "_", "-"; not starting with "." or "-"; at most 255 bytes)`);
    }
    if (seen.has(doc.name)) problems.push(`${label}: the name appears twice`);
    seen.add(doc.name);
    // PostgreSQL's text cannot hold NUL, and no YAML file has one.
    if (doc.text.includes('\0')) problems.push(`${label}: contains a NUL character`);
    bytes += Buffer.byteLength(doc.text);
  }
  if (bytes > MAX_CONFIG_SET_BYTES) problems.push(`the set is ${bytes} bytes; at most ${MAX_CONFIG_SET_BYTES}`);
  return problems;
}

/** Whether two sets hold the same documents (names and texts), in any order. */
export function sameDocuments(a: readonly ConfigDocument[], b: readonly ConfigDocument[]): boolean {
  if (a.length !== b.length) return false;
  const texts = new Map(a.map((d) => [d.name, d.text]));
  return b.every((d) => texts.get(d.name) === d.text);
}
