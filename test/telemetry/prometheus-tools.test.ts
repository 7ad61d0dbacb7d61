import t from 'tap';
import { startAlsFixture } from './helpers/als-fixture.js';
import { run } from './helpers/exposition.js';
import { sendScenario } from './helpers/scenario.js';
import { repoPath } from '../helpers/repo.js';

/**
 * The real promtool (Debian's prometheus package) on what meshd exposes and ships:
 * /metrics text, envoy/prometheus.yml, envoy/prometheus-rules.yml, and unit tests of the
 * rules' semantics (test/telemetry/fixtures/prometheus-rules.test.yml).
 */

const repo = (p: string): string => repoPath(p);

t.test('/metrics text: promtool finds nothing but the unit in Istio\'s own metric name', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  await sendScenario(fx);
  const text = await fx.registry.metrics();

  const full = await run('promtool', ['check', 'metrics'], text);
  // istio_request_duration_milliseconds is Istio's name, which every Istio dashboard and
  // alert queries; promlint prefers seconds. That one finding is the price of compatibility,
  // and the only one allowed: exit 3 = lint findings, 1 would be a parse error.
  t.equal(full.output.trim(), 'istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"');
  t.equal(full.code, 3);

  // Everything else passes clean: exit 0, no output.
  const rest = text.split('\n\n').filter((block) => !block.includes('# TYPE istio_request_duration_milliseconds ')).join('\n\n');
  t.ok(rest.includes('istio_requests_total{'), 'the rest still holds the scenario\'s series');
  const clean = await run('promtool', ['check', 'metrics'], rest);
  t.equal(clean.output, '');
  t.equal(clean.code, 0);
});

t.test('envoy/prometheus.yml passes promtool check config (with its rule file)', async (t) => {
  const r = await run('promtool', ['check', 'config', repo('envoy/prometheus.yml')]);
  t.equal(r.code, 0, r.output);
  t.match(r.output, /SUCCESS: 1 rule files found/);
});

t.test('envoy/prometheus-rules.yml passes promtool check rules', async (t) => {
  const r = await run('promtool', ['check', 'rules', repo('envoy/prometheus-rules.yml')]);
  t.equal(r.code, 0, r.output);
  t.match(r.output, /SUCCESS: \d+ rules found/);
});

t.test('the rules do what they say: promtool test rules', async (t) => {
  // NR rate per namespace, plaintext share ("safe to go STRICT"), root expiry, NACKs.
  const r = await run('promtool', ['test', 'rules', repo('test/telemetry/fixtures/prometheus-rules.test.yml')]);
  t.equal(r.code, 0, r.output);
  t.match(r.output, /SUCCESS/);
});
