/** Conversions of what pg returns: int8 arrives as a string, timestamptz as a Date. */

export function int(value: string | number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`the store returned ${value}, not a safe integer`);
  return n;
}

export function ms(value: Date): number {
  return value.getTime();
}

/** The PostgreSQL error code of a failed statement (SQLSTATE), if any. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';

/** Code-unit order, the same on every replica whatever the database's collation. */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
