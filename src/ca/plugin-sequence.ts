import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../common/atomic-file.js';
import { CaMaterialError, errorMessage } from './errors.js';

/**
 * spiffe_sequence for a plug-in CA. Its roots come from root-cert.pem, not from our journal,
 * so the sequence is remembered in the data dir next to the fingerprints it stands for:
 * it grows when the set of roots changes, across restarts too (SPIFFE Trust Domain and
 * Bundle §4.1.1: monotonically increasing, changes whenever the contents change).
 */
export class PluginBundleSequence {
  private constructor(private readonly file: string, private sequence: number, private fingerprints: string[]) {}

  static async open(file: string): Promise<PluginBundleSequence> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new PluginBundleSequence(file, 0, []);
      throw new CaMaterialError(`cannot read ${file}: ${errorMessage(e)}`, file, { cause: e });
    }
    try {
      const state = JSON.parse(text) as { sequence?: unknown; fingerprints?: unknown };
      if (!Number.isSafeInteger(state.sequence) || !Array.isArray(state.fingerprints) || !state.fingerprints.every((f) => typeof f === 'string')) {
        throw new Error('expected {"sequence": <integer>, "fingerprints": [<hex>...]}');
      }
      return new PluginBundleSequence(file, state.sequence as number, state.fingerprints as string[]);
    } catch (e) {
      throw new CaMaterialError(`${file} is corrupt: ${errorMessage(e)}`, file, { cause: e });
    }
  }

  async forRoots(rootsPem: string[]): Promise<number> {
    const fingerprints = rootsPem.map((p) => createHash('sha256').update(p.replace(/\s/g, '')).digest('hex')).sort();
    if (this.sequence > 0 && fingerprints.join() === this.fingerprints.join()) return this.sequence;
    const next = this.sequence + 1;
    await writeFileAtomic(this.file, `${JSON.stringify({ sequence: next, fingerprints }, null, 2)}\n`, { mode: 0o644 });
    this.sequence = next;
    this.fingerprints = fingerprints;
    return next;
  }
}
