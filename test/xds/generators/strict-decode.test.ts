import t from 'tap';
import { loadConfigDir } from '../../../src/config/load-config-dir.js';
import { buildProxyConfig, type ProxyConfig } from '../../../src/xds/generators/proxy-config.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';
import { envoyRejects } from './envoy-accepts.js';
import { docs, pa, se, snapshotOf, we, workload } from './fixtures.js';
import { repoPath } from '../../helpers/repo.js';

/**
 * Every generated resource decodes strictly against Envoy's own protos (unknown fields and Any
 * types rejected, PGV constraints checked) and loses nothing on encoding: for every mode, every
 * port protocol, with port-level overrides, and for the whole example config.
 */

function problems(c: ProxyConfig): string[] {
  const out: string[] = [];
  const parts = [
    [TypeUrl.Listener, c.listeners],
    [TypeUrl.Cluster, c.clusters],
    [TypeUrl.Route, c.routes],
    [TypeUrl.Endpoint, c.endpoints],
  ] as const;
  for (const [typeUrl, list] of parts) {
    for (const r of list) {
      const name = (r as { name?: string; cluster_name?: string }).name ?? (r as { cluster_name: string }).cluster_name;
      for (const p of envoyRejects(typeUrl, r as unknown as Record<string, unknown>)) out.push(`${name}: ${p}`);
    }
  }
  return out;
}

const PROTOCOLS = ['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTPS', 'TCP', 'TLS', 'MONGO', 'REDIS', 'MYSQL', 'UNKNOWN'];

for (const mode of ['STRICT', 'PERMISSIVE', 'DISABLE', 'UNSET']) {
  t.test(`every resource decodes strictly: namespace ${mode}, every protocol, port-level overrides, DNS and external services`, async (t) => {
    const ports = PROTOCOLS.map((protocol, i) => ({ number: 8000 + i, name: `p${i}`, protocol }));
    const snap = snapshotOf(docs(
      pa('srv', 'default', mode),
      pa('srv', 'ports', 'UNSET', { selector: { app: 'srv' }, ports: { 8000: 'STRICT', 8001: 'PERMISSIVE', 8005: 'DISABLE' } }),
      se('srv', 'all', { ports, selector: { app: 'srv' } }),
      se('srv', 'vip', { addresses: ['127.0.0.77'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 5432, name: 'pg', protocol: 'TCP' }], selector: { app: 'srv' } }),
      se('ext', 'dns', { hosts: ['api.example.com'], location: 'MESH_EXTERNAL', resolution: 'DNS', ports: [{ number: 443, name: 'tls', protocol: 'TLS' }] }),
      se('ext', 'rr', { hosts: ['rr.example.com'], resolution: 'DNS_ROUND_ROBIN', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] }),
      we('srv', 'srv-1', { address: '10.1.0.1', labels: { app: 'srv' }, serviceAccount: 'srv', locality: 'eu/a/b', weight: 5 }),
      we('srv', 'srv-2', { address: '10.1.0.2', labels: { app: 'srv', 'security.istio.io/tlsMode': 'disabled' } }),
      we('cli', 'cli-1', { address: '10.2.0.1', labels: { app: 'cli' }, serviceAccount: 'cli' }),
    ), `trustDomain: example.org\ntrustDomainAliases: [legacy.org]\n`);
    for (const [ns, name] of [['srv', 'srv-1'], ['srv', 'srv-2'], ['cli', 'cli-1']] as const) {
      const c = buildProxyConfig(snap, workload(snap, ns, name));
      t.ok(c.listeners.length > 0 && c.clusters.length > 0 && c.routes.length > 0 && c.endpoints.length > 0, `${name}: all four types present`);
      t.same(problems(c), [], `${ns}/${name}: ${c.listeners.length} listeners, ${c.clusters.length} clusters, ${c.routes.length} routes, ${c.endpoints.length} endpoints`);
    }
  });
}

t.test('the whole example config decodes strictly for every workload', async (t) => {
  const snap = await loadConfigDir(repoPath('examples/config'));
  t.same(snap.messages.filter((m) => m.level === 'error'), [], 'example config is valid');
  t.ok(snap.workloadEntries.length > 0);
  for (const w of snap.workloadEntries) {
    const c = buildProxyConfig(snap, w);
    t.same(problems(c), [], `${w.meta.namespace}/${w.meta.name}`);
  }
});

t.test('the checker itself rejects a misspelt field and a PGV violation', async (t) => {
  t.match(envoyRejects(TypeUrl.Cluster, { name: 'c', type: 'EDS', connect_timeout: { seconds: 1 }, eds_cluster_confg: {} }).join(), /eds_cluster_confg/);
  t.match(envoyRejects(TypeUrl.Listener, { name: 'l', filter_chains: [{ filters: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', cluster: 'c' } }] }] }).join(), /stat_prefix/);
});
