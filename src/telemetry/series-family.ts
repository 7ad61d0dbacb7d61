import type { Metric, Registry } from 'prom-client';
import type { Clock } from '../common/clock.js';

/**
 * Metric families for high-rate, high-label-count series, registered on a prom-client
 * Registry like any prom-client metric.
 *
 * Why not prom-client's own Counter/Histogram: their inc/observe hash the label object
 * on every call (sort + join of ~25 labels), which would cost more than decoding the
 * access-log entry. Here the caller computes one key per entry and looks it up once;
 * the label object is built only when a series is born.
 *
 * Each family bounds its number of series (label combinations): beyond the bound a
 * new combination is not recorded and `onDrop(name)` is called, so one noisy client
 * cannot blow up Prometheus. A series not updated for `idleMs` is dropped (`onExpire`),
 * so label combinations seen once (a scan, a burst of random hosts) do not hold the
 * bound for good. Expiry needs no timer: a family knows the earliest time any series can
 * expire and sweeps when that time has come and it is full or being scraped.
 *
 * Rendering (exposition.ts): each series keeps its rendered lines as bytes until it is
 * updated, so a scrape re-renders only what changed and copies nothing else. At the
 * bounds the exposition is ~60 MB (25 labels of ~30 bytes on every line); rebuilding it
 * as one string took 1.1 s per scrape, all on the event loop.
 */

export type Labels = Readonly<Record<string, string>>;

const NO_LABELS: Labels = Object.freeze({});

export interface FamilyOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  maxSeries: number;
  onDrop: (family: string) => void;
  /** A series not updated for this long is dropped; 0 keeps series forever. */
  idleMs: number;
  onExpire: (family: string, count: number) => void;
  /** Scrapes read it; observations pass their time in (one clock read per access-log entry). */
  clock: Clock;
}

interface PromValue {
  value: number;
  labels: Labels;
  sharedLabels?: Labels;
  metricName?: string;
}

interface PromMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: PromValue[];
  aggregator: 'sum';
}

interface SeriesBase {
  labels: Labels;
  /** Clock time of the last update. */
  lastSeen: number;
  /** The series' exposition lines, each preceded by "\n"; undefined once updated since rendered. */
  text: Buffer | undefined;
  /** `name="value",…` of its labels, escaped, made at the first render. */
  labelText: string | undefined;
}

/** Prometheus text format 0.0.4: in label values `\`, `"` and newline are escaped. */
function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** As prom-client writes HELP text and metric names. */
function escapeText(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** As prom-client writes a sample value. */
export function sampleValue(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return `${v}`;
}

function labelText(labels: Labels): string {
  let out = '';
  for (const [k, v] of Object.entries(labels)) out += `${out === '' ? '' : ','}${k}="${escapeLabelValue(v)}"`;
  return out;
}

export abstract class SeriesFamily<S extends SeriesBase> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, S>();
  private readonly maxSeries: number;
  private readonly onDrop: (family: string) => void;
  private readonly idleMs: number;
  private readonly onExpire: (family: string, count: number) => void;
  private readonly clock: Clock;
  /** No series can expire before this time (the oldest lastSeen at the last sweep, plus idleMs). */
  private nextExpiry = Infinity;
  private header: string | undefined;

  constructor(options: FamilyOptions) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.maxSeries = options.maxSeries;
    this.onDrop = options.onDrop;
    this.idleMs = options.idleMs;
    this.onExpire = options.onExpire;
    this.clock = options.clock;
  }

  abstract readonly type: 'counter' | 'histogram';
  protected abstract create(labels: Labels, now: number): S;
  /** The series' lines, each preceded by "\n", from its escaped label text. */
  protected abstract render(s: S, labels: string): string;
  abstract getForPromString(): PromMetric;

  get size(): number {
    return this.series.size;
  }

  /**
   * The series for `key`, born with `make(ctx)` if new; undefined (and counted) past the
   * bound. `make` and `ctx` instead of a closure: no allocation per observation.
   */
  protected lookup<C>(key: string, make: (ctx: C) => Labels, ctx: C, now: number): S | undefined {
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= this.maxSeries && this.expire(now) === 0) {
        this.onDrop(this.name);
        return undefined;
      }
      s = this.create(make(ctx), now);
      this.series.set(key, s);
      if (this.idleMs > 0 && now + this.idleMs < this.nextExpiry) this.nextExpiry = now + this.idleMs;
    } else {
      s.lastSeen = now;
      s.text = undefined;
    }
    return s;
  }

  /** Drops series idle for idleMs or more, if any can be; returns how many. */
  expire(now: number): number {
    return now >= this.nextExpiry ? this.sweep(now) : 0;
  }

  /** Drops series idle for idleMs or more; returns how many. O(series): run only when one can have expired. */
  private sweep(now: number): number {
    if (this.idleMs <= 0) return 0;
    const cutoff = now - this.idleMs;
    let expired = 0;
    let oldest = Infinity;
    for (const [key, s] of this.series) {
      if (s.lastSeen <= cutoff) {
        this.series.delete(key);
        expired++;
      } else if (s.lastSeen < oldest) {
        oldest = s.lastSeen;
      }
    }
    this.nextExpiry = oldest + this.idleMs;
    if (expired > 0) this.onExpire(this.name, expired);
    return expired;
  }

  /**
   * The family's exposition text (as prom-client's Registry#metrics writes it) appended to
   * `out` as chunks: the header, then each series' cached bytes, rendered again only if it
   * changed since the last scrape. Idle series are swept first.
   */
  renderInto(out: (string | Buffer)[]): void {
    this.expire(this.clock.now());
    out.push((this.header ??= `# HELP ${escapeText(this.name)} ${escapeText(this.help)}\n# TYPE ${escapeText(this.name)} ${this.type}`));
    for (const s of this.series.values()) {
      if (s.text === undefined) {
        s.labelText ??= labelText(s.labels);
        s.text = Buffer.from(this.render(s, s.labelText), 'utf8');
      }
      out.push(s.text);
    }
  }

  /** prom-client's JSON form (getMetricsAsJSON): labels merged into one object per value. */
  get(): PromMetric {
    const metric = this.getForPromString();
    metric.values = metric.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...sharedLabels, ...labels } }));
    return metric;
  }

  reset(): void {
    this.series.clear();
    this.nextExpiry = Infinity;
  }

  /** Registers on a prom-client Registry; it only needs name + getForPromString/get/reset. */
  register(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

interface CounterSeries extends SeriesBase {
  value: number;
}

export class CounterFamily extends SeriesFamily<CounterSeries> {
  override readonly type = 'counter' as const;

  protected create(labels: Labels, now: number): CounterSeries {
    return { labels, value: 0, lastSeen: now, text: undefined, labelText: undefined };
  }

  /** Adds `by` to the series for `key` at clock time `now`; false when the series bound dropped it. */
  inc<C>(key: string, make: (ctx: C) => Labels, ctx: C, by: number, now: number): boolean {
    const s = this.lookup(key, make, ctx, now);
    if (s === undefined) return false;
    s.value += by;
    return true;
  }

  protected render(s: CounterSeries, labels: string): string {
    return `\n${this.name}${labels === '' ? '' : `{${labels}}`} ${sampleValue(s.value)}`;
  }

  getForPromString(): PromMetric {
    const values: PromValue[] = new Array(this.series.size);
    let i = 0;
    for (const s of this.series.values()) values[i++] = { value: s.value, labels: NO_LABELS, sharedLabels: s.labels };
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' };
  }
}

interface HistogramSeries extends SeriesBase {
  /** Per-bucket (non-cumulative) counts; the last slot is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class HistogramFamily extends SeriesFamily<HistogramSeries> {
  override readonly type = 'histogram' as const;
  readonly buckets: readonly number[];
  private readonly leLabels: Labels[];
  /** `name_bucket{le="…"` for each bound, as prom-client orders the labels (le first). */
  private readonly bucketPrefixes: string[];
  private readonly bucketName: string;
  private readonly sumName: string;
  private readonly countName: string;

  constructor(options: FamilyOptions & { buckets: readonly number[] }) {
    super(options);
    this.buckets = [...options.buckets].sort((a, b) => a - b);
    // One frozen {le} object per bound, shared by every series and every scrape.
    this.leLabels = [...this.buckets.map((b) => Object.freeze({ le: String(b) })), Object.freeze({ le: '+Inf' })];
    this.bucketName = `${this.name}_bucket`;
    this.sumName = `${this.name}_sum`;
    this.countName = `${this.name}_count`;
    this.bucketPrefixes = this.leLabels.map((l) => `\n${this.bucketName}{le="${escapeLabelValue(l.le!)}"`);
  }

  protected create(labels: Labels, now: number): HistogramSeries {
    return { labels, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0, lastSeen: now, text: undefined, labelText: undefined };
  }

  observe<C>(key: string, make: (ctx: C) => Labels, ctx: C, value: number, now: number): boolean {
    const s = this.lookup(key, make, ctx, now);
    if (s === undefined) return false;
    const bounds = this.buckets;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
    return true;
  }

  protected render(s: HistogramSeries, labels: string): string {
    const rest = labels === '' ? '}' : `,${labels}}`;
    const braced = labels === '' ? '' : `{${labels}}`;
    let out = '';
    let cumulative = 0;
    for (let b = 0; b < this.bucketPrefixes.length; b++) {
      cumulative += s.counts[b]!;
      out += `${this.bucketPrefixes[b]}${rest} ${sampleValue(cumulative)}`;
    }
    return `${out}\n${this.sumName}${braced} ${sampleValue(s.sum)}\n${this.countName}${braced} ${sampleValue(s.count)}`;
  }

  getForPromString(): PromMetric {
    const perSeries = this.leLabels.length + 2;
    const values: PromValue[] = new Array(this.series.size * perSeries);
    let i = 0;
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let b = 0; b < this.leLabels.length; b++) {
        cumulative += s.counts[b]!;
        values[i++] = { metricName: this.bucketName, value: cumulative, labels: this.leLabels[b]!, sharedLabels: s.labels };
      }
      values[i++] = { metricName: this.sumName, value: s.sum, labels: NO_LABELS, sharedLabels: s.labels };
      values[i++] = { metricName: this.countName, value: s.count, labels: NO_LABELS, sharedLabels: s.labels };
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}
