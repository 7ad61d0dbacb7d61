/**
 * meshd's PostgreSQL advisory locks, in the two-key form (`pg_advisory_lock(int4, int4)`,
 * PostgreSQL docs, "Advisory Lock Functions"): the first key is meshd's own, so an
 * application sharing the database with its own advisory locks cannot collide with ours.
 * Both are session locks: they go when the session that holds them ends.
 */
export const LOCK_NAMESPACE = 0x6d736864; // "mshd"

/** Held while the schema is read and migrated, so replicas starting together migrate once. */
export const MIGRATION_LOCK = 1;

/** Held by the leader for as long as it leads. */
export const LEADER_LOCK = 2;
