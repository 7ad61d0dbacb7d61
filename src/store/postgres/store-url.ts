/**
 * The store's address: a libpq-style URL (postgres://user:password@host:port/database?sslmode=…,
 * PostgreSQL docs, "Connection URIs"), as `pg` reads it.
 */
export function checkStoreUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not quoted: the text may hold a password.
    throw new Error('--store is not a URL; expected postgres://USER@HOST:PORT/DATABASE');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`--store must be a postgres:// or postgresql:// URL, not ${parsed.protocol}//`);
  }
}

/** The URL without its password, for logs and messages. */
export function redactStoreUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = 'redacted';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}
