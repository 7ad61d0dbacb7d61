import t from 'tap';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadConfigDir } from '../../src/config/load-config-dir.js';
import { simulateConnection } from '../../src/check/simulate-connection.js';
import {
  COMPOSE_FILE, DEMO_CONFIG, ROOT, bootstrapSpecs, hostPath, inCidr, ipv4Of, ipv4ToInt, loadCompose, mountsOf, run, sidecarsOf,
} from './helpers/compose.js';

/**
 * docker-compose.yml, checked without Docker: everything it names exists, the sidecars sit in
 * their apps' network namespaces at the addresses demo/config gives their WorkloadEntries, the
 * legacy client is outside the mesh, only the documented ports are published, images are pinned,
 * and (when Debian's docker-compose is installed) the Compose schema accepts the file.
 */

const compose = loadCompose();
const services = compose.services;
const sidecars = sidecarsOf(compose);
const snapshot = await loadConfigDir(DEMO_CONFIG);
const meshWorkloads = snapshot.workloadEntries.filter((w) => w.spec.serviceAccount !== '');
const svc = (name: string) => {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};

t.test('every file and directory docker-compose.yml names exists', async (t) => {
  for (const [name, s] of Object.entries(services)) {
    if (s.build) {
      t.ok(statSync(join(ROOT, s.build.context)).isDirectory(), `${name}: build context ${s.build.context}`);
      t.ok(existsSync(join(ROOT, s.build.context, s.build.dockerfile ?? 'Dockerfile')), `${name}: ${s.build.dockerfile}`);
    }
    for (const m of mountsOf(s)) {
      if (m.bind) {
        t.ok(existsSync(m.source), `${name}: bind mount source ${m.source} exists`);
        // A file mounted on a file path, a directory on a directory path.
        t.equal(statSync(m.source).isFile(), /\.[a-z]+$/.test(m.target), `${name}: ${m.target} is mounted as a ${statSync(m.source).isFile() ? 'file' : 'directory'}`);
      } else {
        t.ok(m.source in compose.volumes, `${name}: named volume ${m.source} is declared`);
      }
    }
    // Every script a container runs is one of ours, mounted where the command expects it.
    for (const arg of [...(s.entrypoint ?? []), ...(s.command ?? [])]) {
      if (!/^\/demo\/.*\.(mjs|sh)$/.test(arg)) continue;
      const file = hostPath(s, arg);
      t.ok(file !== undefined && statSync(file).isFile(), `${name}: ${arg} is ${file}`);
    }
  }
  t.ok(Object.values(services).some((s) => (s.entrypoint ?? []).some((a) => a.endsWith('.sh'))), 'the script check above saw scripts');
});

t.test('each sidecar shares its app\'s network namespace at the address of its WorkloadEntry', async (t) => {
  t.same(sidecars.map((s) => `${s.namespace}/${s.workload}`).sort(), meshWorkloads.map((w) => `${w.meta.namespace}/${w.meta.name}`).sort(),
    'one sidecar per WorkloadEntry with a service account, and no other');
  const specs = bootstrapSpecs(compose);
  const uid = svc('bootstrap').environment?.['SIDECAR_UID'];
  for (const sc of sidecars) {
    const sidecar = svc(sc.service);
    const app = svc(sc.app);
    const we = snapshot.workloadEntries.find((w) => w.meta.namespace === sc.namespace && w.meta.name === sc.workload)!;
    t.equal(sidecar.network_mode, `service:${sc.app}`, `${sc.service}: network_mode service:<app>`);
    t.equal(sidecar.networks, undefined, `${sc.service}: no network of its own`);
    t.equal(sidecar.ports, undefined, `${sc.service}: publishes nothing`);
    t.equal(ipv4Of(app), we.spec.address, `${sc.app}: ipv4_address = WorkloadEntry ${sc.namespace}/${sc.workload} address`);
    t.same([app.environment?.['NAMESPACE'], app.environment?.['WORKLOAD']], [sc.namespace, sc.workload], `${sc.app} reports itself as ${sc.namespace}/${sc.workload}`);
    t.same(Object.values(we.spec.ports).map(String), [app.environment?.['PORT']], `${sc.app} listens on the WorkloadEntry's port (the inbound cluster's 127.0.0.1:<port>)`);
    t.same(sidecar.depends_on?.['bootstrap'], { condition: 'service_completed_successfully' }, `${sc.service} starts once its bootstrap is written`);
    t.ok(sidecar.depends_on?.[sc.app], `${sc.service} starts after its app (it joins the app's network namespace)`);
    t.same(specs.filter((s) => s.namespace === sc.namespace && s.workload === sc.workload).map((s) => s.serviceAccount), [we.spec.serviceAccount],
      `the bootstrap service writes ${sc.namespace}/${sc.workload}'s bootstrap with a token for its service account`);
    t.equal(sidecar.environment?.['ENVOY_UID'], uid, `${sc.service}: Envoy runs as the uid that owns its 0600 bootstrap`);
    t.equal(sidecar.environment?.['ENVOY_GID'], uid);
  }
  t.equal(specs.length, sidecars.length, 'no bootstrap without a sidecar');
  // A WorkloadEntry address not held by a sidecar's app would be a workload nobody runs.
  const appAddresses = new Set(sidecars.map((sc) => ipv4Of(svc(sc.app))));
  for (const w of snapshot.workloadEntries) t.ok(appAddresses.has(w.spec.address), `${w.meta.namespace}/${w.meta.name} (${w.spec.address}) runs in the demo`);
});

t.test('the bootstrap files the bootstrap service writes are the ones the sidecars read', async (t) => {
  const writer = readFileSync(join(ROOT, 'demo/bootstrap/write-bootstraps.sh'), 'utf8');
  const reader = readFileSync(join(ROOT, 'demo/envoy/run-sidecar.sh'), 'utf8');
  t.match(writer, /out="\$OUT_DIR\/\$ns\.\$workload\.yaml"/, 'written as <OUT_DIR>/<namespace>.<workload>.yaml');
  t.match(reader, /bootstrap="\/etc\/meshd\/\$name\.yaml"/, 'read as /etc/meshd/<namespace>.<workload>.yaml');
  const out = svc('bootstrap').environment?.['OUT_DIR'];
  const written = mountsOf(svc('bootstrap')).find((m) => m.target === out);
  t.ok(written && !written.bind && !written.readOnly, `OUT_DIR ${out} is a writable named volume`);
  for (const sc of sidecars) {
    const read = mountsOf(svc(sc.service)).find((m) => m.target === '/etc/meshd');
    t.same(read && { source: read.source, readOnly: read.readOnly }, { source: written?.source, readOnly: true }, `${sc.service} mounts that volume read-only at /etc/meshd`);
    t.match(sc.bootstrapName, /^[a-z0-9-]+\.[a-z0-9-]+$/, `${sc.service} asks for ${sc.bootstrapName}.yaml`);
  }
});

t.test('each sidecar has its own meshd agent in its app\'s network namespace, on a volume only the two of them (and the bootstrap step) mount', async (t) => {
  const b = svc('bootstrap');
  const env = b.environment ?? {};
  const agentDir = env['AGENT_DIR']!;
  const uid = env['SIDECAR_UID'];
  const flagsOf = (s: { command?: string[] }): Record<string, string> =>
    Object.fromEntries((s.command ?? []).slice(1).map((a) => /^--([a-z-]+)=(.*)$/.exec(a)).filter((m) => m !== null).map((m) => [m![1]!, m![2]!]));
  const agents = Object.entries(services).filter(([, s]) => s.command?.[0] === 'agent');
  t.equal(agents.length, sidecars.length, 'one agent per sidecar');
  for (const sc of sidecars) {
    const mine = agents.filter(([, s]) => s.network_mode === `service:${sc.app}`);
    t.equal(mine.length, 1, `${sc.app}: one agent in its network namespace`);
    const [name, agent] = mine[0]!;
    const we = snapshot.workloadEntries.find((w) => w.meta.namespace === sc.namespace && w.meta.name === sc.workload)!;
    t.same(agent.image, svc('meshd').image, `${name} runs the meshd image`);
    t.equal(agent.user, `${uid}:${uid}`, `${name} runs as the sidecar's uid: Envoy must open its 0600 sockets`);
    const flags = flagsOf(agent);
    t.same((agent.command ?? []).slice(1).filter((a) => !/^--[a-z-]+=/.test(a)), [], `${name}: every flag as --name=value`);
    t.same([flags['namespace'], flags['service-account']], [sc.namespace, we.spec.serviceAccount], `${name} gets the SVID of ${sc.namespace}/${sc.workload}'s service account`);
    t.equal(flags['xds-address'], env['XDS_ADDRESS'], `${name} reaches meshd where the bootstrap step says`);
    t.same([flags['token-file'], flags['ca-root'], flags['out'], flags['sds-socket']],
      [`${agentDir}/join-token`, `${agentDir}/meshd-root.pem`, `${agentDir}/certs`, `${agentDir}/certs/sds.sock`],
      `${name} reads what the bootstrap step writes and keeps its files and sockets in the workload's volume`);

    const volume = mountsOf(agent).find((m) => m.target === agentDir);
    t.ok(volume && !volume.bind && !volume.readOnly, `${name} mounts a writable named volume at ${agentDir}`);
    const sidecar = svc(sc.service);
    const seen = mountsOf(sidecar).find((m) => m.target === agentDir);
    t.same(seen && { source: seen.source, readOnly: seen.readOnly }, { source: volume?.source, readOnly: true }, `${sc.service} mounts the same volume read-only (a socket opens on a read-only mount)`);
    t.equal(sidecar.environment?.['AGENT_CERTS'], flags['out'], `${sc.service} waits for the sockets in the agent's --out`);
    t.same(sidecar.depends_on?.[name], { condition: 'service_started' }, `${sc.service} starts after ${name}`);
    const written = mountsOf(b).find((m) => m.source === volume?.source);
    t.equal(written?.target, `${env['AGENTS_DIR']}/${sc.namespace}.${sc.workload}`, 'the bootstrap step writes the join token into that volume');
    t.same(agent.depends_on?.['bootstrap'], { condition: 'service_completed_successfully' }, `${name} starts once its join token is written`);
    const users = Object.entries(services).filter(([, s]) => mountsOf(s).some((m) => m.source === volume?.source)).map(([n]) => n).sort();
    t.same(users, ['bootstrap', name, sc.service].sort(), `no other workload mounts ${volume?.source}: its sockets serve this workload's key`);
  }
  const runner = readFileSync(join(ROOT, 'demo/envoy/run-sidecar.sh'), 'utf8');
  t.match(runner, /until \[ -S "\$certs\/xds\.sock" \] && \[ -S "\$certs\/sds\.sock" \]/, 'run-sidecar.sh waits for both sockets');
});

t.test('meshd serves the demo config and is healthy only when /ready says so; the bootstrap service reads what meshd wrote', async (t) => {
  const m = svc('meshd');
  const flag = (name: string) => m.command?.[m.command.indexOf(name) + 1];
  t.equal(m.command?.[0], 'serve');
  t.equal(hostPath(m, flag('--config-dir')!), DEMO_CONFIG, '--config-dir is demo/config, bind-mounted (host edits reach the watcher)');
  const data = mountsOf(m).find((x) => x.target === flag('--data-dir'));
  t.ok(data && !data.bind && !data.readOnly, '--data-dir is a writable named volume');
  t.equal(flag('--monitoring-addr'), '0.0.0.0:15014', 'HTTP on every interface of the container (Prometheus, the healthcheck, the published port)');
  t.notOk(m.command?.includes('--secure-grpc-addr'), 'gRPC TLS on its default 0.0.0.0:15012');

  const b = svc('bootstrap');
  const env = b.environment ?? {};
  t.same(b.depends_on?.['meshd'], { condition: 'service_healthy' }, 'bootstrap waits for meshd\'s CA and token key');
  const bData = mountsOf(b).find((x) => x.target === env['MESHD_DATA_DIR']);
  t.same(bData && { source: bData.source, readOnly: bData.readOnly }, { source: data?.source, readOnly: true }, 'bootstrap reads meshd\'s data volume, read-only');
  t.equal(hostPath(b, env['CONFIG_DIR']!), DEMO_CONFIG, 'bootstrap reads the same config dir');
  t.equal(env['XDS_ADDRESS'], 'meshd:15012', 'sidecars dial meshd by its service name (a DNS SAN of its serving certificate) on its TLS gRPC port');
  t.equal(b.network_mode, 'none', 'bootstrap needs no network: it only reads files');
  t.same(b.image, m.image, 'bootstrap runs the meshd image');

  // The healthcheck command itself, against a stand-in for /ready: exit 0 on 200, 1 on 503.
  const test = m.healthcheck?.test ?? [];
  t.same(test.slice(0, 3), ['CMD', 'node', '-e']);
  const script = test[3] ?? '';
  t.match(script, /http:\/\/127\.0\.0\.1:15014\/ready/);
  for (const [status, code] of [[200, 0], [503, 1]] as const) {
    const server: Server = createServer((req, res) => { res.writeHead(req.url === '/ready' ? status : 404).end(); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const r = await run(process.execPath, ['-e', script.replace('127.0.0.1:15014', `127.0.0.1:${port}`)]);
    server.close();
    t.equal(r.code, code, `/ready ${status} → healthcheck exit ${code}`);
  }
  const r = await run(process.execPath, ['-e', script.replace('127.0.0.1:15014', '127.0.0.1:1')]);
  t.equal(r.code, 1, 'meshd not listening → unhealthy');
});

t.test('one static subnet: fixed addresses inside it, outside Docker\'s dynamic range, unique', async (t) => {
  t.same(Object.keys(compose.networks), ['mesh']);
  const ipam = compose.networks['mesh']?.ipam?.config ?? [];
  t.equal(ipam.length, 1);
  const { subnet = '', ip_range: range = '', gateway = '' } = ipam[0] ?? {};
  t.equal(subnet, '172.28.0.0/16');
  t.ok(inCidr(range.split('/')[0]!, subnet) && Number(range.split('/')[1]) > Number(subnet.split('/')[1]), `ip_range ${range} lies inside ${subnet}`);
  const fixed = Object.entries(services).flatMap(([name, s]) => (ipv4Of(s) ? [[name, ipv4Of(s)!] as const] : []));
  t.ok(fixed.length >= sidecars.length + 1, 'apps and the legacy client have fixed addresses');
  for (const [name, ip] of fixed) {
    t.ok(inCidr(ip, subnet), `${name} ${ip} is in ${subnet}`);
    t.notOk(inCidr(ip, range), `${name} ${ip} is outside ${range}, where Docker picks addresses for the others`);
    t.not(ip, gateway, `${name} is not the gateway`);
  }
  t.equal(new Set(fixed.map(([, ip]) => ip)).size, fixed.length, 'no address used twice');
  for (const [name, s] of Object.entries(services)) {
    if (s.network_mode !== undefined) continue;
    const nets = Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {});
    t.same(nets, ['mesh'], `${name} is on the demo network`);
  }
  t.ok(Number.isFinite(ipv4ToInt(gateway)));
});

t.test('the legacy client is outside the mesh and calls one STRICT and one PERMISSIVE workload in plaintext', async (t) => {
  const legacy = svc('legacy-client');
  t.notOk(Object.values(services).some((s) => s.network_mode === 'service:legacy-client'), 'no sidecar shares its network namespace');
  t.notOk(snapshot.workloadEntries.some((w) => w.spec.address === ipv4Of(legacy)), 'its address is no WorkloadEntry\'s');
  t.equal(hostPath(legacy, legacy.command?.[1] ?? ''), join(ROOT, 'demo/client/legacy.mjs'));
  const targets = (legacy.command ?? []).slice(2).filter((a) => /^[^-][^=]*=http:/.test(a)).map((a) => new URL(a.slice(a.indexOf('=') + 1)));
  t.ok(targets.length >= 2);
  const outcomes = new Map<string, string>();
  for (const url of targets) {
    const sc = sidecars.find((s) => s.app === url.hostname);
    t.ok(sc, `${url.href}: ${url.hostname} is an app with a sidecar (a compose service name, resolved by Docker's DNS)`);
    if (!sc) continue;
    const we = snapshot.workloadEntries.find((w) => w.meta.namespace === sc.namespace && w.meta.name === sc.workload)!;
    t.ok(Object.values(we.spec.ports).includes(Number(url.port)), `${url.href}: port ${url.port} is a port of ${sc.namespace}/${sc.workload}`);
    const check = simulateConnection(snapshot, { kind: 'outside' }, we, Number(url.port));
    outcomes.set(`${sc.namespace}/${sc.workload}`, `${check.outcome} (${check.serverMode})`);
    if (url.pathname === '/peer') t.ok(svc(sc.app).environment?.['PEER_URL'], `${url.href}: ${sc.app} has a PEER_URL to call`);
  }
  t.same(Object.fromEntries(outcomes), { 'payments/api-1': 'reset (STRICT)', 'shop/web-1': 'plaintext (PERMISSIVE)' }, 'meshd check predicts one refusal and one plaintext success');
});

t.test('web-1 calls payments through its sidecar: the peer URL\'s host maps to the payments VIP', async (t) => {
  const web = svc('web-1');
  const peer = new URL(web.environment?.['PEER_URL'] ?? '');
  const mapped = (web.extra_hosts ?? []).map((h) => h.split(/:(?=[^:]+$)/)).find(([host]) => host === peer.hostname);
  t.ok(mapped, `${peer.hostname} is in extra_hosts`);
  const entry = snapshot.serviceEntries.find((se) => se.hosts.includes(peer.hostname));
  t.ok(entry, `${peer.hostname} is a ServiceEntry host`);
  t.same(entry?.addresses, [mapped?.[1]], `mapped to the ServiceEntry's loopback VIP ${mapped?.[1]}`);
  t.ok(inCidr(mapped?.[1] ?? '', '127.0.0.0/8'), 'a loopback VIP: the sidecar\'s outbound listener binds it inside the app\'s namespace');
  t.ok(entry?.ports.some((p) => p.number === Number(peer.port)), `port ${peer.port} is a service port`);
  const target = snapshot.workloadEntries.find((w) => w.meta.namespace === entry?.meta.namespace)!;
  const client = snapshot.workloadEntries.find((w) => w.meta.namespace === web.environment?.['NAMESPACE'] && w.meta.name === web.environment?.['WORKLOAD'])!;
  const check = simulateConnection(snapshot, { kind: 'workload', workload: client }, target, Number(peer.port));
  t.equal(check.outcome, 'mtls', check.summary);
  t.equal(check.peerIdentity, 'spiffe://cluster.local/ns/shop/sa/shop-web');
});

t.test('only the documented ports are published, and only on the host\'s loopback', async (t) => {
  const published = Object.entries(services).flatMap(([name, s]) => (s.ports ?? []).map((p) => `${name} ${p}`));
  t.same(published.sort(), ['meshd 127.0.0.1:15014:15014', 'prometheus 127.0.0.1:9090:9090']);
  const doc = readFileSync(join(ROOT, 'docs/demo.md'), 'utf8');
  t.match(doc, /localhost:15014/, 'docs/demo.md names meshd\'s port');
  t.match(doc, /localhost:9090/, 'docs/demo.md names Prometheus\'s port');
});

t.test('images are pinned: Envoy and Prometheus to a release, Node to its major version', async (t) => {
  for (const [name, s] of Object.entries(services)) {
    const image = s.image ?? '';
    t.notMatch(image, /:latest$|^[^:]+$/, `${name}: ${image} has a tag, not latest`);
    if (image.startsWith('envoyproxy/envoy:')) t.match(image, /^envoyproxy\/envoy:v1\.\d+\.\d+$/, `${name}: Envoy release pinned`);
    if (image.startsWith('prom/prometheus:')) t.match(image, /^prom\/prometheus:v\d+\.\d+\.\d+$/, `${name}: Prometheus release pinned`);
    if (image.startsWith('node:')) t.equal(image, 'node:20-bookworm-slim', `${name}: the Node meshd targets`);
  }
  t.equal(new Set(sidecars.map((sc) => svc(sc.service).image)).size, 1, 'every sidecar runs the same Envoy');
});

t.test('nothing runs as root but the bootstrap step (which chowns) and the Envoy entrypoint (which drops to ENVOY_UID)', async (t) => {
  for (const [name, s] of Object.entries(services)) {
    if ((s.image ?? '').startsWith('node:')) t.equal(s.user, 'node', `${name} runs as the image's node user`);
  }
  t.equal(svc('bootstrap').user, '0:0');
  t.equal(svc('meshd').user, undefined, 'meshd: the image\'s USER node');
  for (const [name, s] of Object.entries(services)) if (s.command?.[0] === 'agent') t.match(s.user, /^[1-9]\d*:[1-9]\d*$/, `${name}: the agent runs as the sidecar's uid`);
  for (const sc of sidecars) t.match(svc(sc.service).environment?.['ENVOY_UID'], /^[1-9]\d*$/, `${sc.service}: Envoy drops root`);
});

t.test('the meshd image: the Dockerfile copies what exists, the dockerignore lets exactly that in, and it runs the compose command', async (t) => {
  const m = svc('meshd');
  const dockerfile = join(ROOT, m.build?.context ?? '.', m.build?.dockerfile ?? 'Dockerfile');
  const text = readFileSync(dockerfile, 'utf8');
  const ignore = readFileSync(`${dockerfile}.dockerignore`, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  t.equal(ignore[0], '*', 'the dockerignore starts by excluding everything');
  t.ok(ignore.slice(1).every((l) => /^![\w.-]+$/.test(l)), 'then lets in named top-level paths only');
  const allowed = new Set(ignore.slice(1).map((l) => l.slice(1)));
  const copies = text.split('\n').filter((l) => /^COPY\s/.test(l) && !l.includes('--from='));
  t.ok(copies.length >= 3);
  const copied = new Set<string>();
  for (const line of copies) {
    const sources = line.trim().split(/\s+/).slice(1, -1);
    for (const src of sources) {
      copied.add(src);
      t.ok(existsSync(join(ROOT, src)), `COPY ${src} exists in the repository`);
      t.ok(allowed.has(src), `COPY ${src} is in the build context`);
    }
  }
  t.same([...allowed].sort(), [...copied].sort(), 'nothing else is sent to the build (no node_modules, .git, .meshd keys)');
  t.match(text, /^RUN npm run build$/m);
  const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
  t.same([build.compilerOptions.rootDir, build.compilerOptions.outDir], ['src', 'dist'], 'npm run build puts src/cli/main.ts at dist/cli/main.js');
  t.match(readFileSync(join(ROOT, 'bin/meshd.js'), 'utf8'), /'\.\.\/dist\/cli\/main\.js'/, 'which bin/meshd.js (the image\'s `meshd`) runs');
  t.match(text, /^RUN ln -s \/opt\/meshd\/bin\/meshd\.js \/usr\/local\/bin\/meshd/m);
  t.match(text, /^ENTRYPOINT \["meshd"\]$/m);
  const cmd = /^CMD (\[.*\])$/m.exec(text);
  t.same(cmd && JSON.parse(cmd[1]!), m.command, 'the image\'s default command is the demo\'s');
  t.match(text, /^FROM node:20-bookworm-slim/m);
  t.match(text, /^USER node$/m, 'meshd does not run as root');
});

// docker-compose comes from Debian (scripts/test-prerequisites.sh installs it): a missing one fails here, never skips.
t.test('the Compose schema accepts the file (docker-compose config, from Debian\'s docker-compose package)', async (t) => {
  const r = await run('docker-compose', ['-f', COMPOSE_FILE, 'config', '--quiet']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr.trim(), '', 'no warnings');
});
