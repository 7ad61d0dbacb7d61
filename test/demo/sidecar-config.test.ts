import t from 'tap';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { TokenAuthority } from '../../src/auth/token-authority.js';
import { openCertificateAuthority } from '../../src/ca/index.js';
import { systemClock } from '../../src/common/clock.js';
import { loadConfigDir } from '../../src/config/load-config-dir.js';
import { BOOTSTRAP_TYPE, PROMETHEUS_STATS_PORT } from '../../src/xds/bootstrap/build-bootstrap.js';
import { buildProxyConfig, type ProxyConfig } from '../../src/xds/generators/proxy-config.js';
import { lookupType } from '../../src/envoy/protos.js';
import { decodeStrict, formatStrictErrors } from '../../src/envoy/strict-decode.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { envoyRejects } from '../xds/generators/envoy-accepts.js';
import { DEMO_CONFIG, bootstrapSpecs, hostPath, ipv4Of, loadCompose, run, sidecarsOf } from './helpers/compose.js';
import { meshdCommand } from '../helpers/meshd-cli.js';

/**
 * What each demo sidecar's Envoy would load, checked against Envoy's own protos (no Envoy runs
 * here): the bootstrap file the demo's own bootstrap script writes (run here as the container
 * runs it, with `meshd` from source), the Prometheus stats listener in it, and every listener,
 * cluster, route and endpoint meshd would then serve the sidecar over ADS.
 */

const compose = loadCompose();
const sidecars = sidecarsOf(compose);
const bootstrapService = compose.services['bootstrap']!;
const env = bootstrapService.environment ?? {};
const snapshot = await loadConfigDir(DEMO_CONFIG);
const BOOTSTRAP = lookupType(BOOTSTRAP_TYPE);

const work = mkdtempSync(join(tmpdir(), 'meshd-demo-bootstrap-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const dataDir = join(work, 'data');
const outDir = join(work, 'bootstrap');
mkdirSync(outDir);

// meshd serve's first start: the CA and the token signing key in the data dir.
const ca = await openCertificateAuthority({ dataDir, trustDomain: 'cluster.local', registry: new Registry(), clock: systemClock, autoRotate: false });
ca.stop();
const tokens = await TokenAuthority.open(dataDir, systemClock);

// `meshd` on PATH, as the image's /usr/local/bin/meshd, running the built CLI.
const bin = join(work, 'bin');
mkdirSync(bin);
writeFileSync(join(bin, 'meshd'), `#!/bin/sh\nexec ${meshdCommand().flat().map((a) => `"${a}"`).join(' ')} "$@"\n`);
chmodSync(join(bin, 'meshd'), 0o755);

/** Every file under dir: content hash, mode and mtime, to prove a run wrote nothing there. */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = statSync(p);
      if (e.isDirectory()) {
        out[p] = `dir ${st.mode.toString(8)} ${st.mtimeMs}`;
        walk(p);
      } else {
        out[p] = `${createHash('sha256').update(readFileSync(p)).digest('hex')} ${st.mode.toString(8)} ${st.mtimeMs}`;
      }
    }
  };
  walk(dir);
  return out;
}

const asRoot = process.getuid?.() === 0;
const sidecarUid = asRoot ? Number(env['SIDECAR_UID']) : process.getuid!();
const before = fingerprint(dataDir);
const script = hostPath(bootstrapService, bootstrapService.entrypoint?.[1] ?? '')!;
const result = await run('sh', [script, ...(bootstrapService.command ?? [])], {
  env: {
    PATH: `${bin}:${process.env['PATH']}`,
    HOME: work,
    MESHD_DATA_DIR: dataDir,
    CONFIG_DIR: hostPath(bootstrapService, env['CONFIG_DIR']!)!,
    OUT_DIR: outDir,
    XDS_ADDRESS: env['XDS_ADDRESS']!,
    SIDECAR_UID: String(sidecarUid),
  },
});

t.test('the bootstrap service\'s script writes one 0600 bootstrap per sidecar, owned by the sidecar\'s uid, and writes nothing in the data dir', async (t) => {
  t.equal(result.code, 0, result.stderr);
  t.equal(result.stderr.match(/warning/gi), null, 'meshd printed no warnings');
  t.same(fingerprint(dataDir), before, 'the data dir is untouched: the read-only mount of meshd\'s volume is enough');
  t.same(readdirSync(outDir).sort(), sidecars.map((s) => `${s.bootstrapName}.yaml`).sort(), 'exactly the files the sidecars read');
  for (const sc of sidecars) {
    const st = statSync(join(outDir, `${sc.bootstrapName}.yaml`));
    t.equal(st.mode & 0o777, 0o600, `${sc.bootstrapName}.yaml is 0600: it holds the token`);
    t.equal(st.uid, sidecarUid, `owned by uid ${sidecarUid}${asRoot ? ' (ENVOY_UID of the sidecars)' : ' (not root here: the chown is to ourselves)'}`);
  }
  for (const s of bootstrapSpecs(compose)) t.match(result.stdout, `${s.namespace}/${s.workload} (service account ${s.serviceAccount})`);
});

for (const sc of sidecars) {
  t.test(`${sc.service}: its bootstrap decodes strictly as envoy.config.bootstrap.v3.Bootstrap and ties Envoy to ${sc.namespace}/${sc.workload}`, async (t) => {
    const we = snapshot.workloadEntries.find((w) => w.meta.namespace === sc.namespace && w.meta.name === sc.workload)!;
    const doc = parse(readFileSync(join(outDir, `${sc.bootstrapName}.yaml`), 'utf8'));
    const strict = decodeStrict(BOOTSTRAP_TYPE, doc);
    t.same(strict.valid ? [] : strict.errors, [], formatStrictErrors(BOOTSTRAP_TYPE, strict));
    t.same(strict.warnings, [], 'no deprecated field: a newer Envoy than the protos meshd checks against still takes it');

    const ip = ipv4Of(compose.services[sc.app]!);
    t.equal(doc.node.id, `sidecar~${ip}~${sc.workload}.${sc.namespace}~${sc.namespace}.svc.cluster.local`, 'node id carries the container address');
    t.same([doc.node.metadata.NAMESPACE, doc.node.metadata.WORKLOAD_NAME, doc.node.metadata.SERVICE_ACCOUNT, doc.node.metadata.INSTANCE_IPS],
      [sc.namespace, sc.workload, we.spec.serviceAccount, ip]);

    const xds = doc.static_resources.clusters.find((c: { name: string }) => c.name === 'xds-grpc');
    t.equal(xds.type, 'STRICT_DNS', 'meshd by name, through Docker\'s DNS');
    t.same(xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: 'meshd', port_value: 15012 });
    const tls = xds.transport_socket.typed_config;
    t.equal(tls.sni, 'meshd');
    t.equal(tls.common_tls_context.validation_context.trusted_ca.inline_string, ca.trustBundle().rootsPem.map((p) => `${p.trim()}\n`).join(''), 'trusts exactly meshd\'s roots');

    const auth = doc.dynamic_resources.ads_config.grpc_services[0].initial_metadata.find((m: { key: string }) => m.key === 'authorization');
    const subject = await tokens.verify(String(auth.value).replace(/^Bearer /, ''));
    t.same(subject, { namespace: sc.namespace, serviceAccount: we.spec.serviceAccount }, 'the token proves the WorkloadEntry\'s service account, so meshd admits the sidecar');
    t.same(doc.admin.address.socket_address, { address: '127.0.0.1', port_value: 15000 }, 'admin (config_dump shows the token) stays on loopback');
  });

  t.test(`${sc.service}: Istio's prometheus_stats listener is in the bootstrap, opens only /stats/prometheus, and clashes with nothing served`, async (t) => {
    const strict = decodeStrict(BOOTSTRAP_TYPE, parse(readFileSync(join(outDir, `${sc.bootstrapName}.yaml`), 'utf8')));
    if (!strict.valid) { t.fail(formatStrictErrors(BOOTSTRAP_TYPE, strict)); return; }
    const m = BOOTSTRAP.toObject(strict.message, { longs: Number, enums: String }) as {
      static_resources: { listeners: Array<Record<string, any>>; clusters: Array<Record<string, any>> };
      admin: { address: { socket_address: { address: string; port_value: number } } };
    };
    t.same(m.static_resources.clusters.map((c) => c.name), ['xds-grpc', 'meshd-als', 'prometheus_stats'], 'meshd\'s clusters and the stats cluster');
    t.same(m.static_resources.listeners.map((l) => l.name), ['prometheus_stats']);
    const stats = m.static_resources.clusters.find((c) => c.name === 'prometheus_stats')!;
    t.same(stats.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: m.admin.address.socket_address.address, port_value: m.admin.address.socket_address.port_value },
      'the stats cluster is the admin interface the bootstrap opens');
    const listener = m.static_resources.listeners[0]!;
    t.same(listener.address.socket_address, { address: '0.0.0.0', port_value: PROMETHEUS_STATS_PORT }, 'Istio\'s stats port, reachable by Prometheus');
    const hcm = lookupType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager')
      .decode(listener.filter_chains[0].filters[0].typed_config.value) as unknown as { route_config: { virtual_hosts: Array<{ routes: Array<{ match: Record<string, unknown>; route: { cluster: string } }> }> } };
    const routes = hcm.route_config.virtual_hosts.flatMap((v) => v.routes);
    t.same(routes.map((r) => [r.match['path'], r.route.cluster]), [['/stats/prometheus', 'prometheus_stats']],
      'one exact path: /config_dump (which shows the token) and the rest of admin stay unreachable');

    // The stats listener must not collide with a listener meshd serves this sidecar.
    const we = snapshot.workloadEntries.find((w) => w.meta.namespace === sc.namespace && w.meta.name === sc.workload)!;
    const served = buildProxyConfig(snapshot, we).listeners.map((l) => l.address!.socket_address!);
    t.notOk(served.some((a) => a.port_value === PROMETHEUS_STATS_PORT || a.port_value === 15000), 'no served listener on 15090 or the admin port');
    t.notOk(served.some((a) => a.address === '0.0.0.0'), 'meshd binds no wildcard listener that could clash with 0.0.0.0:15090');
  });
}

function rejected(c: ProxyConfig): string[] {
  const out: string[] = [];
  const parts = [[TypeUrl.Listener, c.listeners], [TypeUrl.Cluster, c.clusters], [TypeUrl.Route, c.routes], [TypeUrl.Endpoint, c.endpoints]] as const;
  for (const [typeUrl, list] of parts) {
    for (const r of list) {
      const name = (r as { name?: string; cluster_name?: string }).name ?? (r as { cluster_name: string }).cluster_name;
      for (const p of envoyRejects(typeUrl, r as unknown as Record<string, unknown>)) out.push(`${name}: ${p}`);
    }
  }
  return out;
}

t.test('the xDS config meshd serves each sidecar decodes strictly, with the inbound listener on the container address and outbound on the VIPs', async (t) => {
  for (const sc of sidecars) {
    const we = snapshot.workloadEntries.find((w) => w.meta.namespace === sc.namespace && w.meta.name === sc.workload)!;
    const c = buildProxyConfig(snapshot, we);
    t.same(rejected(c), [], `${sc.service}: ${c.listeners.length} listeners, ${c.clusters.length} clusters, ${c.routes.length} routes, ${c.endpoints.length} endpoints`);
    t.same(c.warnings, [], `${sc.service}: no config warnings`);
    const ip = ipv4Of(compose.services[sc.app]!);
    const names = c.listeners.map((l) => l.name);
    t.ok(names.includes(`${ip}_8080`), `${sc.service}: inbound listener ${ip}_8080`);
    for (const se of snapshot.serviceEntries) {
      for (const vip of se.addresses) for (const p of se.ports) t.ok(names.includes(`${vip}_${p.number}`), `${sc.service}: outbound listener ${vip}_${p.number} for ${se.hosts[0]}`);
    }
  }
});

t.test('after the docs\' switch of shop to STRICT, every sidecar\'s config still decodes strictly and web-1 turns STRICT', async (t) => {
  const dir = join(work, 'strict-config');
  mkdirSync(dir);
  for (const f of readdirSync(DEMO_CONFIG)) {
    const text = readFileSync(join(DEMO_CONFIG, f), 'utf8');
    writeFileSync(join(dir, f), f === 'shop.yaml' ? text.replace('    mode: PERMISSIVE', '    mode: STRICT') : text);
  }
  const strict = await loadConfigDir(dir);
  t.same(strict.messages, [], 'the switched config is clean');
  for (const we of strict.workloadEntries) t.same(rejected(buildProxyConfig(strict, we)), [], `${we.meta.namespace}/${we.meta.name}`);
  const web = strict.workloadEntries.find((w) => w.meta.name === 'web-1')!;
  const inbound = buildProxyConfig(strict, web).listeners.find((l) => l.name === `${web.spec.address}_8080`)!;
  t.same(inbound.filter_chains!.map((fc) => fc.name), ['inbound|8080|mtls'], 'only the mTLS chain is left: plaintext matches nothing (NR)');
});
