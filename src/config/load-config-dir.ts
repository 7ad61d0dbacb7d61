/**
 * Reading a config dir: every *.yaml / *.yml file directly in it (not recursive, as
 * `kubectl apply -f DIR`), skipping hidden files and editor backups.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildSnapshot, type ConfigFile, type FileParseCache } from './build-snapshot.js';
import type { MeshSnapshot } from './model.js';

export function isConfigFileName(name: string): boolean {
  return /\.ya?ml$/i.test(name) && !name.startsWith('.') && !name.endsWith('~');
}

export async function readConfigFiles(dir: string): Promise<ConfigFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files: ConfigFile[] = [];
  for (const e of entries) {
    if (!(e.isFile() || e.isSymbolicLink()) || !isConfigFileName(e.name)) continue;
    const path = join(dir, e.name);
    try {
      files.push({ path, text: await readFile(path, 'utf8') });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue; // removed between readdir and read: the next event reloads
      if (code === 'EISDIR') continue;
      files.push({ path, readError: err instanceof Error ? err.message : String(err) });
    }
  }
  return files;
}

/** Load a snapshot from `dir`; a previous snapshot keeps last good versions of failing documents. */
export async function loadConfigDir(dir: string, previous?: MeshSnapshot, cache?: FileParseCache): Promise<MeshSnapshot> {
  return buildSnapshot(await readConfigFiles(dir), previous, cache);
}
