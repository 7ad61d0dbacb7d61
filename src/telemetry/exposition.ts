import { Registry } from 'prom-client';
import { SeriesFamily } from './series-family.js';

/**
 * The registry's Prometheus text exposition, byte for byte what prom-client's
 * Registry#metrics writes, as a list of chunks: istio_* families contribute their cached
 * per-series bytes (series-family.ts) instead of one string rebuilt on every scrape, and
 * every other metric comes from prom-client. The chunks are written to the response as
 * they are; nothing is joined.
 */
export async function exposition(registry: Registry): Promise<(string | Buffer)[]> {
  if (registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE) return [await registry.metrics()];
  const out: (string | Buffer)[] = [];
  for (const metric of registry.getMetricsAsArray()) {
    if (out.length > 0) out.push('\n\n');
    const m: unknown = metric;
    if (m instanceof SeriesFamily) m.renderInto(out);
    else out.push(await registry.getSingleMetricAsString(metric.name));
  }
  out.push('\n');
  return out;
}
