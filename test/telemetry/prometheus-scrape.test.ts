import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { startAlsFixture } from './helpers/als-fixture.js';
import { startPrometheus } from './helpers/prometheus.js';
import { EXPECTED_REQUESTS_BY_FLAGS, sendScenario } from './helpers/scenario.js';
import { repoPath } from '../helpers/repo.js';

/**
 * The real Prometheus (Debian's package) scrapes the registry that meshd's ALS service
 * fills, over loopback HTTP, and answers PromQL through its HTTP API; the shipped rule
 * file loads and evaluates without errors.
 */

const fx = await startAlsFixture();
t.teardown(() => fx.close());
await sendScenario(fx);

const http = createServer((req, res) => {
  if (req.url !== '/metrics') {
    res.writeHead(404).end();
    return;
  }
  fx.registry.metrics().then((text) => res.writeHead(200, { 'content-type': fx.registry.contentType }).end(text));
});
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => http.close(() => resolve())));
const target = `127.0.0.1:${(http.address() as AddressInfo).port}`;

const prom = await startPrometheus({
  targets: [target],
  scrapeIntervalSeconds: 1,
  ruleFiles: [repoPath('envoy/prometheus-rules.yml')],
});
t.teardown(() => prom.stop());

t.test('sum by (response_flags) (istio_requests_total) through the Prometheus HTTP API', async (t) => {
  // The first sample shows up ~5 s after Prometheus starts.
  const byFlags = await prom.waitFor(async () => {
    const result = await prom.query('sum by (response_flags) (istio_requests_total)');
    if (result.length < Object.keys(EXPECTED_REQUESTS_BY_FLAGS).length) return undefined;
    return Object.fromEntries(result.map((s) => [s.metric.response_flags!, Number(s.value[1])]));
  });
  t.strictSame(byFlags, EXPECTED_REQUESTS_BY_FLAGS);

  const nr = await prom.query('sum by (destination_workload, source_workload) (istio_requests_total{response_flags="NR", connection_security_policy="none"})');
  t.strictSame(nr.map((s) => [s.metric, s.value[1]]), [[{ destination_workload: 'reviews-v2', source_workload: 'legacy-client' }, '2']]);
  const up = await prom.query(`up{instance="${target}"}`);
  t.equal(up[0]?.value[1], '1');
});

t.test('the shipped rules load and evaluate against these series without errors', async (t) => {
  type Rule = { name: string; health: string; lastError?: string };
  const rules = await prom.waitFor(async () => {
    const data = (await prom.api('/api/v1/rules')) as { groups: { rules: Rule[] }[] };
    const all = data.groups.flatMap((g) => g.rules);
    return all.length > 0 && all.every((r) => r.health !== 'unknown') ? all : undefined;
  });
  t.ok(rules.length >= 15, `${rules.length} rules`);
  for (const r of rules) t.equal(r.health, 'ok', `${r.name}${r.lastError ? `: ${r.lastError}` : ''}`);
  // A recording rule over the scraped series: the NR rate per destination namespace exists.
  const nrRate = await prom.waitFor(async () => {
    const result = await prom.query('namespace:istio_requests_nr:rate5m');
    return result.length > 0 ? result : undefined;
  });
  t.strictSame(nrRate.map((s) => s.metric), [{ __name__: 'namespace:istio_requests_nr:rate5m', destination_workload_namespace: 'default' }]);
});
