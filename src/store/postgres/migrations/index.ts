import { initial } from './0001-initial.js';

/**
 * The store's schema, one migration per file, applied in order and each recorded in
 * meshd_schema_version. A migration is never edited once released: a change is a new one.
 */
export interface Migration {
  version: number;
  /** Recorded with the version: a database whose name for a version differs is refused. */
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [initial];

/** The schema version this meshd's code knows. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
