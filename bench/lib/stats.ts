/** Percentiles and the summary table every bench prints. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(values: readonly number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? Number.NaN };
}

export const ms = (v: number): string => (Number.isFinite(v) ? (v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 1 : 0)} ms`) : 'n/a');
export const kb = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(1)} KB` : 'n/a');
export const mb = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(0)} MB` : 'n/a');

export interface Row {
  metric: string;
  measured: string;
  ceiling?: string;
  ratio?: number;
  target: string;
  pass: boolean | undefined;
}

export function printTable(title: string, rows: readonly Row[]): void {
  const cells = rows.map((r) => [r.metric, r.measured, r.ceiling ?? '', r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`, r.target, r.pass === undefined ? 'info' : r.pass ? 'PASS' : 'FAIL']);
  const head = ['metric', 'measured', 'ceiling', 'ratio', 'target', 'result'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => c.map((x, i) => x.padEnd(widths[i]!)).join(' | ');
  console.log(`\n${title}`);
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const c of cells) console.log(line(c));
}
