import { Command, Option } from 'commander';
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import { systemClock } from '../common/clock.js';
import { buildSnapshot, type ConfigFile } from '../config/build-snapshot.js';
import { diffSnapshots } from '../config/diff.js';
import { countLevels, formatMessage } from '../config/format.js';
import { readConfigFiles } from '../config/load-config-dir.js';
import { checkConfigDocuments, type ConfigDocument, type ConfigSet } from '../store/config-repository.js';
import { absolute, logLevelOption, storeKeyFileOption, storeOption } from './options.js';
import { operatorName, withCliStore, type StoreCliFlags } from './store-access.js';
import { documentChanges, formatDocumentDiff } from './config-diff.js';

/**
 * `meshd config apply|get|diff`: the mesh config in the shared store (--store), as
 * `kubectl apply -f DIR` / `kubectl get` / `kubectl diff -f DIR` treat a cluster's objects.
 * The whole dir is one set: apply replaces the set in force in one transaction.
 */
export function registerConfig(program: Command): void {
  const config = program.command('config').description('the mesh config in the shared store (--store): apply a config dir, print it, diff against it');

  withStoreFlags(config.command('apply'))
    .description('validate every *.yaml / *.yml in DIR (as meshd validate) and make it the mesh config in force on every replica, in one transaction; nothing is written on any error')
    .requiredOption('-f, --filename <dir>', 'config dir (Istio YAML) to apply')
    .action(async (opts: ConfigFlags & { filename: string }) => {
      const local = await readDir(opts.filename);
      if (!local) {
        process.exitCode = 1;
        return;
      }
      const outcome = await withCliStore(storeFlags(opts), async (store) => {
        const current = await store.config.current();
        return store.config.apply(local.documents, { expectedVersion: current?.version ?? 0, appliedBy: operatorName(), at: systemClock.now() });
      });
      if (outcome.outcome === 'conflict') {
        throw new Error(`the mesh config in the store moved to version ${outcome.currentVersion} while this apply was prepared (another apply ran); nothing was written; run it again`);
      }
      const { set } = outcome;
      process.stdout.write(outcome.outcome === 'unchanged'
        ? `${opts.filename}: unchanged; version ${set.version} (${plural(set.documents.length, 'document')}) stays in force\n`
        : `${opts.filename}: applied as version ${set.version} (${plural(set.documents.length, 'document')}); every replica pushes it to the proxies it affects\n`);
    });

  withStoreFlags(config.command('get'))
    .description('print the mesh config in force in the store (every document, with its file name), or write it into a dir')
    .addOption(new Option('-o, --output-dir <dir>', 'write each document into DIR under its file name instead of printing'))
    .action(async (opts: ConfigFlags & { outputDir?: string }) => {
      const set = await withCliStore(storeFlags(opts), (store) => store.config.current());
      if (!set) {
        process.stderr.write('the store holds no mesh config yet (meshd config apply -f DIR)\n');
        return;
      }
      process.stderr.write(`version ${set.version}, applied ${new Date(set.appliedAt).toISOString()} by ${set.appliedBy}, ${plural(set.documents.length, 'document')}\n`);
      if (opts.outputDir) {
        const dir = absolute(opts.outputDir);
        for (const d of set.documents) await writeFileAtomic(join(dir, d.name), d.text, { mode: 0o644 });
        process.stderr.write(`wrote ${plural(set.documents.length, 'file')} into ${dir}\n`);
        return;
      }
      process.stdout.write(printSet(set));
    });

  withStoreFlags(config.command('diff'))
    .description('show what `meshd config apply -f DIR` would change in the store: documents added, removed and changed, and what they affect; exits 1 when there are differences (as kubectl diff)')
    .requiredOption('-f, --filename <dir>', 'config dir (Istio YAML) to compare')
    .action(async (opts: ConfigFlags & { filename: string }) => {
      const local = await readDir(opts.filename);
      if (!local) {
        process.exitCode = 2;
        return;
      }
      const set = await withCliStore(storeFlags(opts), (store) => store.config.current());
      const changes = documentChanges(set?.documents ?? [], local.documents);
      if (changes.length === 0) {
        process.stdout.write(`no differences: ${opts.filename} is version ${set?.version ?? 0} in the store\n`);
        return;
      }
      for (const change of changes) process.stdout.write(formatDocumentDiff(change, set?.version ?? 0, opts.filename));
      const before = buildSnapshot((set?.documents ?? []).map((d) => ({ path: d.name, text: d.text })));
      const after = buildSnapshot(local.documents.map((d) => ({ path: d.name, text: d.text })));
      const diff = diffSnapshots(before, after);
      const affected = [
        diff.meshChanged ? 'the mesh config (every proxy)' : '',
        diff.namespaces.size > 0 ? `namespaces ${[...diff.namespaces].sort().join(', ')}` : '',
        diff.services.size > 0 ? `services ${[...diff.services].sort().join(', ')}` : '',
        diff.workloads.size > 0 ? `workloads ${[...diff.workloads].sort().join(', ')}` : '',
      ].filter(Boolean);
      process.stdout.write(`${plural(changes.length, 'document')} differ${changes.length === 1 ? 's' : ''}${affected.length > 0 ? `; affects ${affected.join('; ')}` : '; no object changes (formatting or comments only)'}\n`);
      process.exitCode = 1;
    });
}

interface ConfigFlags extends StoreCliFlags {
  logLevel: string;
}

function withStoreFlags(cmd: Command): Command {
  return cmd.addOption(storeOption().makeOptionMandatory()).addOption(storeKeyFileOption()).addOption(logLevelOption().default('warn'));
}

function storeFlags(opts: ConfigFlags): StoreCliFlags & { store: string } {
  if (!opts.store) throw new Error('--store (or MESHD_STORE) is empty; the mesh config commands work on the shared store: --store postgres://USER@HOST:PORT/DATABASE');
  return { store: opts.store!, storeKeyFile: opts.storeKeyFile, logLevel: opts.logLevel };
}

/**
 * The dir's documents, validated as `meshd validate DIR` does (the same messages, file:line).
 * Undefined, with the messages printed, when anything is an error.
 */
async function readDir(dir: string): Promise<{ documents: ConfigDocument[] } | undefined> {
  let isDir: boolean;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch (err) {
    throw new Error(`cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!isDir) throw new Error(`${dir} is not a directory; the mesh config is applied as a whole dir`);
  const files: ConfigFile[] = await readConfigFiles(dir);
  const snapshot = buildSnapshot(files);
  for (const m of snapshot.messages) process.stdout.write(`${formatMessage(m)}\n`);
  const { errors, warnings } = countLevels(snapshot.messages);
  const documents = files.filter((f) => f.text !== undefined).map((f) => ({ name: basename(f.path), text: f.text! }));
  const storable = checkConfigDocuments(documents);
  for (const problem of storable) process.stdout.write(`Error: ${problem}\n`);
  if (errors > 0 || storable.length > 0) {
    process.stdout.write(`${JSON.stringify(dir)}: ${plural(errors + storable.length, 'error')}, ${plural(warnings, 'warning')} in ${plural(files.length, 'file')}; nothing was applied\n`);
    return undefined;
  }
  return { documents };
}

function printSet(set: ConfigSet): string {
  return set.documents.map((d) => `# ${d.name}\n${d.text.endsWith('\n') || d.text === '' ? d.text : `${d.text}\n`}`).join('---\n');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
