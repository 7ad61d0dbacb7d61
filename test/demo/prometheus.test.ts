import t from 'tap';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { hostPath, loadCompose, mountsOf, run, sidecarsOf } from './helpers/compose.js';
import { PROMETHEUS_STATS_PORT } from '../../src/xds/bootstrap/build-bootstrap.js';

/**
 * The demo's Prometheus: the real promtool (Debian's prometheus package) on the config exactly
 * as the container sees it (docker-compose.yml's bind mounts laid out in a scratch root, so the
 * relative rule_files path resolves as it does in the container), and its targets against the
 * services that serve them.
 */

const compose = loadCompose();
const prometheus = compose.services['prometheus']!;
const CONFIG_IN_CONTAINER = '/etc/prometheus/prometheus.yml';

interface PromConfig {
  rule_files: string[];
  scrape_configs: Array<{ job_name: string; metrics_path: string; static_configs: Array<{ targets: string[]; labels?: Record<string, string> }> }>;
}

t.test('promtool check config: the config and its rule file as mounted in the container', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'meshd-demo-prometheus-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const mounts = mountsOf(prometheus);
  t.ok(mounts.length >= 2 && mounts.every((m) => m.bind && m.readOnly), 'bind mounts, read-only');
  for (const m of mounts) {
    mkdirSync(join(root, dirname(m.target)), { recursive: true });
    copyFileSync(m.source, join(root, m.target));
  }
  t.ok(hostPath(prometheus, CONFIG_IN_CONTAINER), `${CONFIG_IN_CONTAINER} (the image's default --config.file) is mounted`);
  const r = await run('promtool', ['check', 'config', join(root, CONFIG_IN_CONTAINER)]);
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout + r.stderr, /SUCCESS: 1 rule files found/);
  t.match(r.stdout + r.stderr, /SUCCESS: \d+ rules found/);
});

t.test('promtool check rules on the mounted rule file', async (t) => {
  const config = parse(readFileSync(hostPath(prometheus, CONFIG_IN_CONTAINER)!, 'utf8')) as PromConfig;
  t.same(config.rule_files, ['prometheus-rules.yml']);
  const rules = hostPath(prometheus, join(dirname(CONFIG_IN_CONTAINER), config.rule_files[0]!));
  t.ok(rules?.endsWith('envoy/prometheus-rules.yml'), 'the project\'s own rules, not a copy');
  const r = await run('promtool', ['check', 'rules', rules!]);
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, /SUCCESS: \d+ rules found/);
});

t.test('it scrapes meshd on its monitoring port and every sidecar on the stats listener, labelled with its workload', async (t) => {
  const config = parse(readFileSync(hostPath(prometheus, CONFIG_IN_CONTAINER)!, 'utf8')) as PromConfig;
  const job = (name: string) => config.scrape_configs.find((s) => s.job_name === name);
  const meshdCommand = compose.services['meshd']?.command ?? [];
  const monitoringPort = meshdCommand[meshdCommand.indexOf('--monitoring-addr') + 1]?.split(':')[1];
  t.same(job('meshd')?.static_configs.flatMap((s) => s.targets), [`meshd:${monitoringPort}`]);
  t.equal(job('meshd')?.metrics_path, '/metrics');

  const statsPort = PROMETHEUS_STATS_PORT; // meshd bootstrap's default, which the demo's bootstrap service keeps
  const envoy = job('envoy-stats');
  t.equal(envoy?.metrics_path, '/stats/prometheus', 'the one path the stats listener forwards');
  const scraped = (envoy?.static_configs ?? []).map((s) => ({ targets: s.targets, labels: s.labels }));
  const expected = sidecarsOf(compose).map((sc) => ({ targets: [`${sc.app}:${statsPort}`], labels: { namespace: sc.namespace, workload: sc.workload } }));
  t.same(scraped, expected, 'one target per sidecar, by its app\'s name (the namespace they share)');
  t.same(prometheus.networks, ['mesh'], 'on the network where those names resolve');
});
