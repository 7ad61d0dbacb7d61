import { open, rename, mkdir, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Crash-safe write: a temporary file in the same directory, fsynced, renamed over the
 * target, then the directory fsynced so the rename itself is durable. A reader (or a
 * restart after a crash) sees the old file or the new one, never half of either.
 * `exclusive` refuses to replace an existing file: CA material is never overwritten.
 */
export interface AtomicWriteOptions {
  mode?: number;
  exclusive?: boolean;
}

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = tempName(path);
  const fh = await open(tmp, 'wx', opts.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    if (opts.exclusive) await assertAbsent(path);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dirname(path));
}

async function assertAbsent(path: string): Promise<void> {
  try {
    const fh = await open(path, 'r');
    await fh.close();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  throw new Error(`refusing to overwrite existing file ${path}`);
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}
