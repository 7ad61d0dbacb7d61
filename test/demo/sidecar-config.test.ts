import t from 'tap';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
import { DEMO_CONFIG, bootstrapSpecs, hostPath, ipv4Of, loadCompose, run, sidecarsOf, type Service } from './helpers/compose.js';
import { startTestMeshd } from '../e2e/helpers/meshd.js';
import { meshdCommand } from '../helpers/meshd-cli.js';
import { XdsTestClient } from '../xds/helpers/xds-client.js';

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
// Each workload's agent volume, as the bootstrap service mounts it (AGENTS_DIR/<namespace>.<workload>).
const agentsDir = join(work, 'agents');
for (const sc of sidecars) mkdirSync(join(agentsDir, sc.bootstrapName), { recursive: true });
const AGENT_DIR = env['AGENT_DIR']!;

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
    AGENTS_DIR: agentsDir,
    AGENT_DIR,
    XDS_ADDRESS: env['XDS_ADDRESS']!,
    SIDECAR_UID: String(sidecarUid),
  },
});

t.test('the bootstrap service\'s script writes one bootstrap per sidecar and a join token and meshd\'s roots per agent, owned by the sidecar\'s uid, and nothing in the data dir', async (t) => {
  t.equal(result.code, 0, result.stderr);
  t.equal(result.stderr.match(/warning/gi), null, 'meshd printed no warnings: the join tokens are short-lived, the agents renew with their SVIDs');
  t.same(fingerprint(dataDir), before, 'the data dir is untouched: the read-only mount of meshd\'s volume is enough');
  t.same(readdirSync(outDir).sort(), sidecars.map((s) => `${s.bootstrapName}.yaml`).sort(), 'exactly the files the sidecars read');
  const owner = `owned by uid ${sidecarUid}${asRoot ? ' (the uid of the agents and of Envoy)' : ' (not root here: the chown is to ourselves)'}`;
  for (const sc of sidecars) {
    const st = statSync(join(outDir, `${sc.bootstrapName}.yaml`));
    t.equal(st.mode & 0o777, 0o600, `${sc.bootstrapName}.yaml is 0600`);
    t.equal(st.uid, sidecarUid, owner);
    const we = snapshot.workloadEntries.find((w) => w.meta.namespace === sc.namespace && w.meta.name === sc.workload)!;
    const dir = join(agentsDir, sc.bootstrapName);
    t.same(readdirSync(dir).sort(), ['join-token', 'meshd-root.pem'], `${sc.bootstrapName}'s agent volume holds what its agent reads, no temporary file`);
    t.equal(statSync(dir).uid, sidecarUid, `the volume is ${owner}: the agent writes its certificates and sockets there`);
    const token = join(dir, 'join-token');
    t.equal(statSync(token).mode & 0o777, 0o600, 'the join token is 0600');
    t.match(await tokens.verify(readFileSync(token, 'utf8').trim()), { namespace: sc.namespace, serviceAccount: we.spec.serviceAccount }, 'the join token proves the WorkloadEntry\'s service account');
    t.equal(readFileSync(join(dir, 'meshd-root.pem'), 'utf8'), ca.trustBundle().rootsPem.map((p) => `${p.trim()}\n`).join(''), 'meshd-root.pem is meshd\'s bundle (the agent verifies meshd with it)');
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

    t.equal(doc.node.metadata.MESHD_SDS_SOURCE, 'agent', 'meshd points the secret references at the agent');

    const pipe = (name: string): unknown => doc.static_resources.clusters.find((c: { name: string }) => c.name === name).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe;
    t.same(pipe('xds-grpc'), { path: `${AGENT_DIR}/certs/xds.sock` }, 'ADS through the agent\'s xDS proxy, in the workload\'s agent volume');
    t.same(pipe('sds-grpc'), { path: `${AGENT_DIR}/certs/sds.sock` }, 'secrets from the agent\'s SDS socket');
    t.same(doc.dynamic_resources.ads_config.grpc_services, [{ envoy_grpc: { cluster_name: 'xds-grpc' } }], 'no token: the agent holds the credential');
    t.notMatch(JSON.stringify(doc), /BEGIN|Bearer|inline_/, 'no token, key or roots in Envoy\'s file');
    const als = doc.static_resources.clusters.find((c: { name: string }) => c.name === 'meshd-als');
    t.equal(als.type, 'STRICT_DNS', 'access logs to meshd by name, through Docker\'s DNS');
    t.same(als.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: 'meshd', port_value: 15012 });
    t.equal(als.transport_socket.typed_config.sni, 'meshd');
    t.same(doc.admin.address.socket_address, { address: '127.0.0.1', port_value: 15000 }, 'admin stays on loopback');
  });

  t.test(`${sc.service}: Istio's prometheus_stats listener is in the bootstrap, opens only /stats/prometheus, and clashes with nothing served`, async (t) => {
    const strict = decodeStrict(BOOTSTRAP_TYPE, parse(readFileSync(join(outDir, `${sc.bootstrapName}.yaml`), 'utf8')));
    if (!strict.valid) { t.fail(formatStrictErrors(BOOTSTRAP_TYPE, strict)); return; }
    const m = BOOTSTRAP.toObject(strict.message, { longs: Number, enums: String }) as {
      static_resources: { listeners: Array<Record<string, any>>; clusters: Array<Record<string, any>> };
      admin: { address: { socket_address: { address: string; port_value: number } } };
    };
    t.same(m.static_resources.clusters.map((c) => c.name), ['xds-grpc', 'sds-grpc', 'meshd-als', 'prometheus_stats'], 'the agent\'s sockets, meshd\'s access logs and the stats cluster');
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
      'one exact path: /config_dump and the rest of admin stay unreachable');

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

/** The agent service beside a sidecar: the meshd image running `agent` in the same app's network namespace. */
function agentServiceOf(app: string): [string, Service] {
  const found = Object.entries(compose.services).filter(([, s]) => s.command?.[0] === 'agent' && s.network_mode === `service:${app}`);
  if (found.length !== 1) throw new Error(`${found.length} agent services in ${app}'s network namespace`);
  return found[0]!;
}

async function until<T>(what: string, probe: () => T | undefined, deadlineMs = 30_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

t.test('each agent\'s compose command line, run as a process against meshd on this data dir, serves its Envoy what the bootstrap points at', async (t) => {
  const meshd = await startTestMeshd({ dataDir, configDir: DEMO_CONFIG });
  t.teardown(() => meshd.close());
  await Promise.all(sidecars.map(async (sc) => {
    const [name, agent] = agentServiceOf(sc.app);
    const hostDir = join(agentsDir, sc.bootstrapName);
    // The container's paths and meshd's service name, mapped to this machine; nothing else changed.
    const args = (agent.command ?? []).map((a) => a.replaceAll(AGENT_DIR, hostDir).replace(env['XDS_ADDRESS']!, `127.0.0.1:${meshd.ports.secureGrpc}`));
    const child = spawn(...meshdCommand(args), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    t.teardown(async () => { child.kill('SIGTERM'); await exited; });

    const doc = parse(readFileSync(join(outDir, `${sc.bootstrapName}.yaml`), 'utf8'));
    const pipe = (c: string): string => doc.static_resources.clusters.find((x: { name: string }) => x.name === c).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path.replace(AGENT_DIR, hostDir);
    // Envoy retries until the agent holds its first SVID; the test waits for it instead.
    await until(`${name}'s sockets and first SVID`, () => ([pipe('xds-grpc'), pipe('sds-grpc'), join(hostDir, 'certs', 'key.pem')].every((f) => existsSync(f)) ? true : undefined))
      .catch((e: Error) => { throw new Error(`${e.message}; its stderr: ${stderr}`); });

    const node = { id: doc.node.id, cluster: doc.node.cluster, metadata: Object.fromEntries(Object.entries(doc.node.metadata).filter(([, v]) => typeof v === 'string')) };
    const ads = new XdsTestClient(`unix:${pipe('xds-grpc')}`);
    t.teardown(() => ads.close());
    const lds = ads.sotw('ads', { node });
    lds.subscribe(TypeUrl.Listener, []);
    const listeners = await lds.next(15_000);
    const sources = listeners.resources.flatMap((r) => JSON.stringify(r.decoded).match(/"cluster_name":"[^"]+"/g) ?? []);
    t.ok(sources.includes('"cluster_name":"sds-grpc"'), `${name}: listeners from meshd through the agent, secrets on sds-grpc`);

    const sds = new XdsTestClient(`unix:${pipe('sds-grpc')}`);
    t.teardown(() => sds.close());
    const secrets = sds.sotw('sds', { node });
    secrets.subscribe(TypeUrl.Secret, ['default']);
    const got = await secrets.next(15_000);
    const key = Buffer.from((got.resources[0]!.decoded as any).tls_certificate.private_key.inline_bytes).toString('utf8');
    t.equal(key, readFileSync(join(hostDir, 'certs', 'key.pem'), 'utf8'), `${name}: Envoy's key is the one the agent made in the workload's volume`);
    lds.cancel();
    secrets.cancel();
  }));
});
