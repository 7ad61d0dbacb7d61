/**
 * The fuzzing loop, run on a worker thread by fuzz/run.ts: fast-check generates inputs
 * (mutations of the corpus, the target's own generators, random bytes, and the target's
 * structured property), each input is written to shared memory before it runs (so a hang or
 * a crash of the worker is reported with its input), and each new outcome class adds its
 * input to the corpus.
 */
import * as fc from 'fast-check';
import { createHash } from 'node:crypto';
import type { FuzzTarget } from './target.js';

export interface Finding {
  input: string; // base64
  error: string;
  kind: 'bytes' | 'property';
}

export interface EngineResult {
  inputs: number;
  propertyRuns: number;
  outcomes: Record<string, number>;
  findings: Finding[];
  newCorpus: Uint8Array[];
  slowest: { ms: number; bytes: number; input: string };
}

export interface SharedInput {
  /** [0] inputs started, [1] length of the current input. */
  counters: Int32Array;
  bytes: Uint8Array;
}

type Op = { kind: number; at: number; len: number; value: number; from: number };

const SLOW_MS = 2000;

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x2d, 0x3a, 0x22, 0x5b, 0x7b];

/** One corpus entry changed by a few edits: flips, interesting bytes, inserts, deletes, duplicates, splices, varints. */
function mutate(seed: Uint8Array, ops: Op[], corpus: Uint8Array[]): Uint8Array {
  let b = Array.from(seed);
  for (const op of ops) {
    const at = b.length === 0 ? 0 : op.at % (b.length + 1);
    switch (op.kind % 9) {
      case 0: if (b.length) b[at % b.length] = b[at % b.length]! ^ (1 << (op.value & 7)); break;
      case 1: if (b.length) b[at % b.length] = INTERESTING[op.value % INTERESTING.length]!; break;
      case 2: b.splice(at, 0, ...Array.from({ length: 1 + (op.len % 8) }, (_, i) => (op.value * (i + 7)) & 0xff)); break;
      case 3: b.splice(at, 1 + (op.len % 16)); break;
      case 4: b.splice(at, 0, ...b.slice(at, at + 1 + (op.len % 64))); break;
      case 5: b = b.slice(0, at); break;
      case 6: {
        const other = corpus[op.from % corpus.length]!;
        const start = op.value % (other.length + 1);
        b.splice(at, op.len % 32, ...other.subarray(start, start + 1 + (op.len % 256)));
        break;
      }
      case 7: b.splice(at, 0, 0xff, 0xff, 0xff, 0xff, 0x0f); break; // a huge varint / length
      case 8: if (b.length) b.splice(at, 0, ...b.slice(0, Math.min(b.length, 1 + (op.len % 512)))); break;
    }
  }
  return Uint8Array.from(b);
}

export function runEngine(target: FuzzTarget, corpus: Uint8Array[], timeMs: number, seed: number, shared: SharedInput): EngineResult {
  const outcomes: Record<string, number> = {};
  const findings = new Map<string, Finding>();
  const newCorpus: Uint8Array[] = [];
  const known = new Set(corpus.map((c) => hash(c)));
  let slowest = { ms: 0, bytes: 0, input: '' };
  let inputs = 0;
  let propertyRuns = 0;

  const op = fc.record({ kind: fc.nat(), at: fc.nat(), len: fc.nat(), value: fc.nat(), from: fc.nat() });
  const sources: fc.Arbitrary<Uint8Array>[] = [
    fc.tuple(fc.nat(), fc.array(op, { minLength: 1, maxLength: 8 })).map(([i, ops]) => mutate(corpus[i % corpus.length]!, ops, corpus)),
    fc.uint8Array({ maxLength: 512 }),
    ...(target.generators ?? []),
  ];
  const weighted = [{ arbitrary: sources[0]!, weight: 6 }, { arbitrary: sources[1]!, weight: 1 }, ...sources.slice(2).map((a) => ({ arbitrary: a, weight: 2 }))];
  const bytesArb = fc.oneof(...weighted).map((b) => ({ kind: 'bytes' as const, b }));
  const arb = target.property
    ? fc.oneof({ arbitrary: bytesArb, weight: 4 }, { arbitrary: target.property.arbitrary.map((v) => ({ kind: 'property' as const, v })), weight: 1 })
    : bytesArb;

  const record = (kind: Finding['kind'], input: Uint8Array, err: unknown): void => {
    const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    const key = `${kind}|${error.replace(/\d+/g, 'N').slice(0, 120)}`;
    if (!findings.has(key)) findings.set(key, { kind, input: Buffer.from(input).toString('base64'), error });
  };

  fc.check(fc.property(arb, (x) => {
    if (x.kind === 'property') {
      propertyRuns++;
      const json = utf8Json(x.v);
      publish(shared, json);
      try {
        target.property!.check(x.v);
      } catch (err) {
        record('property', json, err);
      }
      return true;
    }
    const input = x.b;
    inputs++;
    publish(shared, input);
    const start = performance.now();
    let outcome: string;
    try {
      outcome = target.check(input);
    } catch (err) {
      record('bytes', input, err);
      outcome = 'finding';
    }
    const ms = performance.now() - start;
    // Far slower than any input should be: superlinear work on a crafted input.
    if (ms > SLOW_MS) record('bytes', input, new Error(`slow: ${ms.toFixed(0)} ms for ${input.length} bytes`));
    if (ms > slowest.ms) slowest = { ms, bytes: input.length, input: input.length <= 4096 ? Buffer.from(input).toString('base64') : '' };
    if (outcomes[outcome] === undefined && newCorpus.length < 64) {
      const h = hash(input);
      if (!known.has(h) && input.length <= 64 * 1024) {
        known.add(h);
        newCorpus.push(input);
      }
    }
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    return true;
  }), { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: timeMs, markInterruptAsFailure: false, seed, endOnFailure: true });

  return { inputs, propertyRuns, outcomes, findings: [...findings.values()], newCorpus, slowest };
}

function publish(shared: SharedInput, input: Uint8Array): void {
  const n = Math.min(input.length, shared.bytes.length);
  shared.bytes.set(input.subarray(0, n));
  Atomics.store(shared.counters, 1, n);
  Atomics.add(shared.counters, 0, 1);
}

function utf8Json(v: unknown): Uint8Array {
  try {
    return new TextEncoder().encode(JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? Buffer.from(x).toString('base64') : typeof x === 'bigint' ? String(x) : x)));
  } catch {
    return new TextEncoder().encode(String(v));
  }
}

export function hash(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex').slice(0, 16);
}
