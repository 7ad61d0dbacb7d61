/**
 * Reading a config dir: every *.yaml / *.yml file directly in it (not recursive, as
 * `kubectl apply -f DIR`), skipping hidden files and editor backups.
 *
 * What is read is bounded before any of it is parsed: a file larger than maxFileBytes, or
 * files past maxDirBytes in all (by name order), are not read and are reported as errors, so
 * the objects they held stay in force (build-snapshot.ts).
 *
 * Symlinks are followed only to files inside the config dir. The dir's own path is resolved
 * first, so a config path that is itself a symlink (switched to another dir by a config-sync
 * tool) works, and so does a Kubernetes ConfigMap volume, whose files are symlinks into the
 * same dir (`shop.yaml -> ..data/shop.yaml`, `..data -> ..2024_01_01_00_00_00.123`). A symlink
 * that leads outside is skipped with a warning.
 */
import { constants } from 'node:fs';
import { open, readdir, realpath, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { buildSnapshot, type ConfigFile, type FileParseCache } from './build-snapshot.js';
import type { MeshSnapshot } from './model.js';
import type { ConfigParser } from './off-thread-parse.js';

export interface ConfigReadLimits {
  maxFileBytes: number;
  maxDirBytes: number;
}

/**
 * - 1 MiB a file: Istio objects are a few KB (1 MiB holds ~5,000 WorkloadEntries), and
 *   Kubernetes itself refuses an object over 1.5 MiB (etcd's default request limit). The YAML
 *   bounds (yaml-limits.ts) are set so that a file of this size of Istio objects passes them.
 * - 16 MiB a dir: sixteen files at the bound. A reload parses only changed files, but a start
 *   parses them all, at about 1 MB/s.
 */
export const CONFIG_READ_LIMITS: ConfigReadLimits = Object.freeze({ maxFileBytes: 1024 * 1024, maxDirBytes: 16 * 1024 * 1024 });

export function isConfigFileName(name: string): boolean {
  return /\.ya?ml$/i.test(name) && !name.startsWith('.') && !name.endsWith('~');
}

function fmtBytes(n: number): string {
  const mib = n / (1024 * 1024);
  const unit = mib >= 1 ? `${Number(mib.toFixed(1))} MiB` : `${Number((n / 1024).toFixed(1))} KiB`;
  return `${n.toLocaleString('en-US')} bytes (${unit})`;
}

/** Inside `root` (already resolved), not `root` itself. */
function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** Up to `max` bytes; undefined when there are more (a file can grow between stat and read). */
async function readAtMost(handle: FileHandle, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(Math.min(64 * 1024, max + 1 - total));
    const { bytesRead } = await handle.read(buf, 0, buf.length, null);
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    chunks.push(buf.subarray(0, bytesRead));
    total += bytesRead;
    if (total > max) return undefined;
  }
}

type ReadOutcome =
  | { text: string; bytes: number }
  /** `size` bytes, or more than `size` when it grew while being read. */
  | { tooLarge: { size: number; grew: boolean } }
  | { notRegular: true }
  | { gone: true }
  | { error: string };

/**
 * One file's text, at most `max` bytes. O_NONBLOCK: opening a FIFO named like a config file
 * must not block; O_NOFOLLOW: `realPath` was resolved, a symlink there now is a change under way.
 */
async function readRealFile(realPath: string, max: number): Promise<ReadOutcome> {
  let handle: FileHandle;
  try {
    handle = await open(realPath, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Removed or replaced between readdir and read: the change that did it triggers a reload.
    if (code === 'ENOENT' || code === 'ELOOP') return { gone: true };
    return { error: err instanceof Error ? err.message : String(err) };
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) return { gone: true };
    if (!st.isFile()) return { notRegular: true };
    if (st.size > max) return { tooLarge: { size: st.size, grew: false } };
    const bytes = await readAtMost(handle, max);
    return bytes === undefined ? { tooLarge: { size: max, grew: true } } : { text: bytes.toString('utf8'), bytes: bytes.length };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  } finally {
    await handle.close();
  }
}

function fileTooLarge(path: string, size: { size: number; grew: boolean }, limits: ConfigReadLimits): ConfigFile {
  const is = size.grew ? `more than ${fmtBytes(size.size)}` : fmtBytes(size.size);
  return { path, notRead: { level: 'error', message: `file is ${is}; meshd reads config files of at most ${fmtBytes(limits.maxFileBytes)}` } };
}

/** What a read outcome means for the snapshot; undefined for a file to leave out (gone). */
function toConfigFile(path: string, r: ReadOutcome, limits: ConfigReadLimits): ConfigFile | undefined {
  if ('text' in r) return { path, text: r.text };
  if ('tooLarge' in r) return fileTooLarge(path, r.tooLarge, limits);
  if ('notRegular' in r) return { path, notRead: { level: 'error', message: 'not a regular file; meshd reads only regular files (or symlinks to them)' } };
  if ('error' in r) return { path, readError: r.error };
  return undefined;
}

/** A single config file (meshd validate FILE), under the same size bound. */
export async function readConfigFile(path: string, limits: ConfigReadLimits = CONFIG_READ_LIMITS): Promise<ConfigFile> {
  const r = await readRealFile(await realpath(path), limits.maxFileBytes);
  return toConfigFile(path, r, limits) ?? { path, readError: 'the file was removed while being read' };
}

export async function readConfigFiles(dir: string, limits: ConfigReadLimits = CONFIG_READ_LIMITS): Promise<ConfigFile[]> {
  const root = await realpath(dir);
  const entries = (await readdir(root, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: ConfigFile[] = [];
  const dirBudget = (): ConfigFile['notRead'] => ({ level: 'error', message: `not read: meshd reads at most ${fmtBytes(limits.maxDirBytes)} of config from a dir, and the files before this one (by name) leave too little of it` });
  let total = 0;
  for (const e of entries) {
    if (!(e.isFile() || e.isSymbolicLink()) || !isConfigFileName(e.name)) continue;
    const path = join(dir, e.name);
    let real = join(root, e.name);
    if (e.isSymbolicLink()) {
      try {
        real = await realpath(real);
      } catch {
        continue; // dangling, or removed since readdir
      }
      if (!isInside(root, real)) {
        files.push({ path, notRead: { level: 'warning', message: `symlink to ${real}, outside the config dir ${root}; meshd follows symlinks only to files inside it, so this file is skipped` } });
        continue;
      }
    }
    const room = limits.maxDirBytes - total;
    const r = await readRealFile(real, Math.min(limits.maxFileBytes, room));
    if ('tooLarge' in r && r.tooLarge.size <= limits.maxFileBytes && !(r.tooLarge.grew && r.tooLarge.size === limits.maxFileBytes)) {
      // Within the file bound, over what is left of the dir's: this and every later file are not read.
      files.push({ path, notRead: dirBudget() });
      total = limits.maxDirBytes;
      continue;
    }
    const f = toConfigFile(path, r, limits);
    if (f === undefined) continue;
    if ('bytes' in r) total += r.bytes;
    files.push(f);
  }
  return files;
}

/**
 * Load a snapshot from `dir`; a previous snapshot keeps last good versions of failing documents.
 * With a parser, files not in the cache are parsed by it (off the event loop when large).
 */
export async function loadConfigDir(dir: string, previous?: MeshSnapshot, cache?: FileParseCache, parser?: ConfigParser): Promise<MeshSnapshot> {
  const files = await readConfigFiles(dir);
  if (parser && cache) await parser.parseInto(files, cache);
  return buildSnapshot(files, previous, cache);
}
