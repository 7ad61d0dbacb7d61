/**
 * npm run fuzz -- TARGET|all [--time SECONDS] [--seed N]
 *
 * Fuzzes meshd's decoders of untrusted bytes (fuzz/targets/) for --time seconds each (default
 * 60), on a worker thread with a 1 GB heap: an input that throws outside the decoder's
 * contract, hangs (no progress for 10 s) or exhausts the heap is saved under
 * fuzz/findings/TARGET/ and printed. The corpus in fuzz/corpus/TARGET/ seeds each run and
 * keeps the inputs that reached a new kind of outcome.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startWorker, siblingModuleUrl } from '../src/common/worker-thread.js';
import { hash, type EngineResult } from './engine.js';
import { TARGETS } from './targets/index.js';

const HANG_MS = 10_000;
/** Loading a target (protos, CA seeds) under tsx on a busy machine; the hang clock starts with the first input. */
const START_MS = 180_000;
const ROOT = import.meta.dirname;

function parseArgs(argv: string[]): { names: string[]; timeS: number; seed: number } {
  let timeS = 60;
  let seed = Date.now() % 2 ** 31;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--time') timeS = Number(argv[++i]);
    else if (a === '--seed') seed = Number(argv[++i]);
    else names.push(a);
  }
  if (names.length === 0 || !Number.isFinite(timeS) || timeS <= 0) {
    console.error(`usage: npm run fuzz -- TARGET|all [--time SECONDS] [--seed N]\ntargets: ${Object.keys(TARGETS).join(', ')}`);
    process.exit(2);
  }
  const all = names.includes('all') ? Object.keys(TARGETS) : names;
  for (const n of all) if (!TARGETS[n]) { console.error(`no fuzz target "${n}"; targets: ${Object.keys(TARGETS).join(', ')}`); process.exit(2); }
  return { names: all, timeS, seed };
}

function save(dir: string, name: string, bytes: Uint8Array): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

async function fuzz(name: string, timeS: number, seed: number): Promise<boolean> {
  const target = TARGETS[name]!;
  const corpusDir = join(ROOT, 'corpus', name);
  const findingsDir = join(ROOT, 'findings', name);
  mkdirSync(corpusDir, { recursive: true });
  let corpus: Uint8Array[] = readdirSync(corpusDir).sort().map((f) => new Uint8Array(readFileSync(join(corpusDir, f))));
  if (corpus.length === 0) {
    corpus = await target.seeds();
    for (const c of corpus) save(corpusDir, `${hash(c)}.bin`, c);
  }
  const counters = new SharedArrayBuffer(8);
  const current = new SharedArrayBuffer(1 << 20);
  const started = Date.now();
  const worker = startWorker(siblingModuleUrl('worker', import.meta.url), {
    workerData: { name, corpus, timeMs: timeS * 1000, seed, counters, bytes: current },
    resourceLimits: { maxOldGenerationSizeMb: 1024 },
  });
  const view = new Int32Array(counters);
  const currentInput = (): Uint8Array => new Uint8Array(current).slice(0, Atomics.load(view, 1));
  const outcome = await new Promise<{ result?: EngineResult; failure?: string }>((resolve) => {
    let last = -1;
    let lastChange = Date.now();
    const watchdog = setInterval(() => {
      const n = Atomics.load(view, 0);
      if (n !== last) { last = n; lastChange = Date.now(); return; }
      if (Date.now() - lastChange > (n === 0 ? START_MS : HANG_MS)) {
        clearInterval(watchdog);
        const input = currentInput();
        void worker.terminate();
        resolve({ failure: `hang: no progress for ${HANG_MS / 1000} s on an input of ${input.length} bytes, saved as ${save(findingsDir, `hang-${hash(input)}.bin`, input)}` });
      }
    }, 500);
    worker.once('message', (result: EngineResult) => { clearInterval(watchdog); resolve({ result }); });
    worker.once('error', (err) => {
      clearInterval(watchdog);
      const input = currentInput();
      resolve({ failure: `the worker died (${err.message}) on an input of ${input.length} bytes, saved as ${save(findingsDir, `crash-${hash(input)}.bin`, input)}` });
    });
  });
  void worker.terminate();
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  if (outcome.failure) {
    console.log(`${name}: ${seconds} s, ${Atomics.load(view, 0).toLocaleString('en-US')} inputs; FINDING ${outcome.failure}`);
    return false;
  }
  const r = outcome.result!;
  for (const c of r.newCorpus) save(corpusDir, `${hash(c)}.bin`, c);
  const classes = Object.entries(r.outcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(`${name}: ${seconds} s (seed ${seed}), ${r.inputs.toLocaleString('en-US')} byte inputs + ${r.propertyRuns.toLocaleString('en-US')} property runs; outcomes: ${classes}; corpus +${r.newCorpus.length}; slowest input ${r.slowest.ms.toFixed(1)} ms (${r.slowest.bytes} bytes); findings: ${r.findings.length}`);
  for (const f of r.findings) {
    const bytes = Buffer.from(f.input, 'base64');
    const path = save(findingsDir, `${f.kind}-${hash(bytes)}.bin`, bytes);
    console.log(`  FINDING (${f.kind}) ${f.error.slice(0, 300)}\n    input: ${path}`);
  }
  return r.findings.length === 0;
}

const { names, timeS, seed } = parseArgs(process.argv.slice(2));
let clean = true;
for (const name of names) clean = (await fuzz(name, timeS, seed)) && clean;
process.exitCode = clean ? 0 : 1;
