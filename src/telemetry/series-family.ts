import type { Metric, Registry } from 'prom-client';

/**
 * Metric families for high-rate, high-label-count series, registered on a prom-client
 * Registry like any prom-client metric.
 *
 * Why not prom-client's own Counter/Histogram: their inc/observe hash the label object
 * on every call (sort + join of ~25 labels), which would cost more than decoding the
 * access-log entry. Here the caller computes one key per entry and looks it up once;
 * the label object is built only when a series is born. Rendering goes through
 * prom-client's getForPromString/sharedLabels path, whose WeakMap caches each series'
 * formatted label string across scrapes, so a scrape escapes every label once in the
 * series' life.
 *
 * Each family bounds its number of series (label combinations): beyond the bound a
 * new combination is not recorded and `onDrop(name)` is called, so one noisy client
 * cannot blow up Prometheus.
 */

export type Labels = Readonly<Record<string, string>>;

const NO_LABELS: Labels = Object.freeze({});

export interface FamilyOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  maxSeries: number;
  onDrop: (family: string) => void;
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

abstract class SeriesFamily<S extends { labels: Labels }> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, S>();
  private readonly maxSeries: number;
  private readonly onDrop: (family: string) => void;

  constructor(options: FamilyOptions) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.maxSeries = options.maxSeries;
    this.onDrop = options.onDrop;
  }

  abstract readonly type: 'counter' | 'histogram';
  protected abstract create(labels: Labels): S;
  abstract getForPromString(): PromMetric;

  get size(): number {
    return this.series.size;
  }

  /**
   * The series for `key`, born with `make(ctx)` if new; undefined (and counted) past the
   * bound. `make` and `ctx` instead of a closure: no allocation per observation.
   */
  protected lookup<C>(key: string, make: (ctx: C) => Labels, ctx: C): S | undefined {
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= this.maxSeries) {
        this.onDrop(this.name);
        return undefined;
      }
      s = this.create(make(ctx));
      this.series.set(key, s);
    }
    return s;
  }

  /** prom-client's JSON form (getMetricsAsJSON): labels merged into one object per value. */
  get(): PromMetric {
    const metric = this.getForPromString();
    metric.values = metric.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...sharedLabels, ...labels } }));
    return metric;
  }

  reset(): void {
    this.series.clear();
  }

  /** Registers on a prom-client Registry; it only needs name + getForPromString/get/reset. */
  register(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

interface CounterSeries {
  labels: Labels;
  value: number;
}

export class CounterFamily extends SeriesFamily<CounterSeries> {
  override readonly type = 'counter' as const;

  protected create(labels: Labels): CounterSeries {
    return { labels, value: 0 };
  }

  /** Adds `by` to the series for `key`; false when the series bound dropped it. */
  inc<C>(key: string, make: (ctx: C) => Labels, ctx: C, by = 1): boolean {
    const s = this.lookup(key, make, ctx);
    if (s === undefined) return false;
    s.value += by;
    return true;
  }

  getForPromString(): PromMetric {
    const values: PromValue[] = new Array(this.series.size);
    let i = 0;
    for (const s of this.series.values()) values[i++] = { value: s.value, labels: NO_LABELS, sharedLabels: s.labels };
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' };
  }
}

interface HistogramSeries {
  labels: Labels;
  /** Per-bucket (non-cumulative) counts; the last slot is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class HistogramFamily extends SeriesFamily<HistogramSeries> {
  override readonly type = 'histogram' as const;
  readonly buckets: readonly number[];
  private readonly leLabels: Labels[];
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
  }

  protected create(labels: Labels): HistogramSeries {
    return { labels, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
  }

  observe<C>(key: string, make: (ctx: C) => Labels, ctx: C, value: number): boolean {
    const s = this.lookup(key, make, ctx);
    if (s === undefined) return false;
    const bounds = this.buckets;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
    return true;
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
