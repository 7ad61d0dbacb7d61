/** Runs one target's engine on this worker thread (fuzz/run.ts starts it). */
import { parentPort, workerData } from 'node:worker_threads';
import { runEngine } from './engine.js';
import { TARGETS } from './targets/index.js';

const { name, corpus, timeMs, seed, counters, bytes } = workerData as { name: string; corpus: Uint8Array[]; timeMs: number; seed: number; counters: SharedArrayBuffer; bytes: SharedArrayBuffer };
const target = TARGETS[name]!;
const result = runEngine(target, corpus.length > 0 ? corpus : await target.seeds(), timeMs, seed, { counters: new Int32Array(counters), bytes: new Uint8Array(bytes) });
parentPort!.postMessage(result);
