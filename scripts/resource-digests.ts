/**
 * Prints a SHA-256 of everything meshd generates for Envoy and gRPC, one line per item, for a
 * representative set of configs and proxies: the example and demo config dirs plus fixtures
 * covering every generator branch (resolutions, protocols, mTLS modes, aliases, TLS 1.3,
 * localities). Run it before and after a refactoring that must not change behaviour, and diff:
 *
 *   npx tsx scripts/resource-digests.ts > before.txt
 *   ...change the code...
 *   npx tsx scripts/resource-digests.ts | diff before.txt -
 *
 * Covered: CDS, EDS, LDS, RDS of sidecars (direct and behind meshd agent) and of proxyless gRPC
 * (wildcard and by name), Secrets (certificate, ROOTCA, SPIFFE validator, through the real
 * SecretGenerator), Envoy bootstraps (direct and --agent; YAML text and strictly decoded bytes),
 * gRPC bootstraps, access-log configs, push plans between
 * fixture snapshots, and `meshd check` output for every workload pair and port.
 */
import { createHash } from 'node:crypto';
import { loadConfigDir } from '../src/config/index.js';
import type { MeshSnapshot, WorkloadEntry } from '../src/config/model.js';
import type { Generator, ProxyInfo, Resource } from '../src/xds/core/types.js';
import { createSidecarGenerators, namespaceSharedFingerprint, sidecarFingerprint } from '../src/xds/generators/sidecar-generators.js';
import { createGrpcGenerators } from '../src/xds/generators/grpc/index.js';
import { inboundListenerName } from '../src/xds/generators/grpc/names.js';
import { configPushRequest } from '../src/xds/push-plan/affected-proxies.js';
import { SecretGenerator } from '../src/svid/secret-generator.js';
import { caSvidSource } from '../src/svid/svid-source.js';
import type { SvidCache } from '../src/svid/svid-cache.js';
import type { CertificateAuthority, IssuedKeyPair } from '../src/ca/types.js';
import { buildBootstrap } from '../src/xds/bootstrap/build-bootstrap.js';
import { buildAgentBootstrap } from '../src/xds/bootstrap/build-agent-bootstrap.js';
import { toYaml } from '../src/xds/bootstrap/generate-bootstrap.js';
import { parseEndpointAddress } from '../src/xds/bootstrap/endpoint-address.js';
import { buildGrpcBootstrap } from '../src/agent/grpc-bootstrap.js';
import { httpAccessLog, listenerNoFilterChainAccessLog, tcpAccessLog, tcpProxyAccessLogOptions } from '../src/telemetry/access-log-config.js';
import { simulateConnection } from '../src/check/simulate-connection.js';
import { formatCheckResult } from '../src/check/format-check.js';
import { decodeStrict } from '../src/envoy/strict-decode.js';
import { encodeMessage } from '../src/envoy/protos.js';
import { TypeUrl } from '../src/envoy/type-urls.js';
import { docs, identity, pa, proxyFor, se, snapshotOf, we } from '../test/xds/generators/fixtures.js';

const sha = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');
const lines: string[] = [];
const out = (key: string, data: string | Uint8Array): void => {
  lines.push(`${key} ${sha(data)}`);
};

function fixtures(): Array<[string, MeshSnapshot]> {
  const base = [
    se('shop', 'web', { ports: [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 9090, name: 'grpc', protocol: 'GRPC', targetPort: 9091 }], selector: { app: 'web' }, addresses: ['127.0.0.20'] }),
    se('shop', 'db', { ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }], selector: { app: 'db' } }),
    se('shop', 'cache', { ports: [{ number: 6379, name: 'redis', protocol: 'UNKNOWN' }], selector: { app: 'cache' }, exportTo: ['.'] }),
    se('ext', 'api', { hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], location: 'MESH_EXTERNAL', resolution: 'DNS' }),
    se('ext', 'dns-rr', { hosts: ['rr.example.com'], ports: [{ number: 8080, name: 'http', protocol: 'HTTP2' }], resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'a.example.com' }] }),
    se('ext', 'dns-many', { hosts: ['many.example.com'], ports: [{ number: 8443, name: 'tcp', protocol: 'TCP' }], resolution: 'DNS', endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }] }),
    se('ext', 'none', { hosts: ['none.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'NONE' }),
    se('ext', 'inline', { hosts: ['inline.example.com'], ports: [{ number: 3306, name: 'tcp', protocol: 'TCP' }], endpoints: [{ address: '10.1.0.1', serviceAccount: 'x', labels: { app: 'x' } }] }),
    we('shop', 'web-1', { address: '10.0.0.1', serviceAccount: 'web', labels: { app: 'web' }, ports: { http: 8080, grpc: 9091 }, locality: 'eu/zone-a/sub', weight: 3 }),
    we('shop', 'web-2', { address: '10.0.0.2', serviceAccount: 'web', labels: { app: 'web' }, locality: 'eu/zone-b' }),
    we('shop', 'db-1', { address: '10.0.0.3', serviceAccount: 'db', labels: { app: 'db' } }),
    we('shop', 'cache-1', { address: '10.0.0.4', serviceAccount: 'cache', labels: { app: 'cache' }, annotations: { 'sidecar.istio.io/inject': 'false' } }),
    we('shop', 'loopback', { address: '127.0.0.1', serviceAccount: 'lo', labels: { app: 'web' } }),
    we('other', 'client', { address: '10.0.1.1', serviceAccount: 'client', labels: { app: 'client' } }),
  ];
  const aliases = 'trustDomain: example.org\ntrustDomainAliases: [old.example.org]\nmeshMTLS:\n  minProtocolVersion: TLSV1_3\n';
  return [
    ['fixture-permissive', snapshotOf(docs(...base))],
    ['fixture-strict', snapshotOf(docs(...base, pa('istio-system', 'default', 'STRICT')))],
    ['fixture-mixed', snapshotOf(docs(...base, pa('shop', 'default', 'STRICT'), pa('shop', 'db', 'DISABLE', { selector: { app: 'db' } }), pa('shop', 'web', 'PERMISSIVE', { selector: { app: 'web' }, ports: { 8080: 'STRICT', 9091: 'DISABLE' } })))],
    ['fixture-aliases', snapshotOf(docs(...base, pa('other', 'default', 'DISABLE')), aliases)],
    ['fixture-no-auto-mtls', snapshotOf(docs(...base), 'enableAutoMtls: false\n')],
  ];
}

function generate(g: Generator, proxy: ProxyInfo, names?: readonly string[]): Resource[] {
  return g.generate(proxy, { names: names === undefined ? undefined : new Set(names) }) as Resource[];
}

function resources(key: string, list: readonly Resource[]): void {
  for (const r of list) {
    lines.push(`${key} ${r.name} ${r.version} ${sha(r.body)}`);
  }
  if (list.length === 0) lines.push(`${key} (none)`);
}

function proxies(snapshot: MeshSnapshot, w: WorkloadEntry, extra: Record<string, unknown> = {}): ProxyInfo {
  const td = snapshot.mesh.trustDomain;
  return proxyFor(w.meta.namespace, w.meta.name, identity(w.meta.namespace, w.spec.serviceAccount || 'default', td), w.spec.address || '10.0.0.1', extra);
}

function xds(label: string, snapshot: MeshSnapshot): void {
  const sidecar = createSidecarGenerators(() => snapshot);
  const grpc = createGrpcGenerators(() => snapshot);
  for (const w of snapshot.workloadEntries) {
    const who = `${label} ${w.meta.namespace}/${w.meta.name}`;
    const sp = proxies(snapshot, w);
    for (const g of sidecar) resources(`${who} sidecar ${g.typeUrl}`, generate(g, sp));
    const agentFronted = proxies(snapshot, w, { MESHD_SDS_SOURCE: 'agent' });
    for (const g of sidecar) resources(`${who} sidecar-behind-agent ${g.typeUrl}`, generate(g, agentFronted));
    out(`${who} sidecar-fingerprint`, sidecarFingerprint(snapshot, w));
    out(`${who} namespace-fingerprint`, namespaceSharedFingerprint(snapshot, w.meta.namespace));
    const gp = proxies(snapshot, w, { GENERATOR: 'grpc' });
    for (const g of grpc) resources(`${who} grpc ${g.typeUrl}`, generate(g, gp));
    const ports = [...Object.values(w.spec.ports), 50051];
    const named = ports.flatMap((p) => [inboundListenerName('0.0.0.0', p), inboundListenerName('::', p), inboundListenerName(w.spec.address || '10.9.9.9', p)]);
    const lds = grpc.find((g) => g.typeUrl === TypeUrl.Listener)!;
    resources(`${who} grpc-named ${TypeUrl.Listener}`, generate(lds, gp, named));
    for (const g of grpc.filter((x) => x.typeUrl !== TypeUrl.Listener)) {
      const all = generate(g, gp).map((r) => r.name);
      resources(`${who} grpc-named ${g.typeUrl}`, generate(g, gp, [...all, 'outbound|1||nope']));
    }
  }
}

function pushPlans(label: string, prev: MeshSnapshot, next: MeshSnapshot): void {
  const plan = configPushRequest(prev, next);
  if (plan === undefined) {
    lines.push(`${label} push none`);
    return;
  }
  for (const w of [...prev.workloadEntries, ...next.workloadEntries]) {
    for (const extra of [{}, { GENERATOR: 'grpc' }]) {
      const p = proxies(next, w, extra);
      const proxiesOk = typeof plan.proxies === 'function' ? plan.proxies(p) : plan.proxies === undefined || plan.proxies.has(p.id);
      const types = typeof plan.typeUrls === 'function' ? plan.typeUrls(p) : plan.typeUrls;
      lines.push(`${label} push ${w.meta.namespace}/${w.meta.name} ${JSON.stringify(extra)} ${proxiesOk} ${JSON.stringify(types)} ${plan.reason}`);
    }
  }
}

async function secrets(): Promise<void> {
  const chain = '-----BEGIN CERTIFICATE-----\nMIIBleaf\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBintermediate\n-----END CERTIFICATE-----\n';
  const key = '-----BEGIN PRIVATE KEY-----\nMIGHkey\n-----END PRIVATE KEY-----\n';
  const roots = ['-----BEGIN CERTIFICATE-----\nMIIBroot1\n-----END CERTIFICATE-----\n', '-----BEGIN CERTIFICATE-----\nMIIBroot2\n-----END CERTIFICATE-----\n'];
  const svid = { chainPem: chain, keyPem: key } as unknown as IssuedKeyPair;
  const ca = { trustBundle: () => ({ trustDomain: 'cluster.local', rootsPem: roots, sequence: 1, refreshHintSeconds: 300 }) } as unknown as CertificateAuthority;
  const svids = { get: async () => svid } as unknown as SvidCache;
  const logger = { warn: () => undefined } as never;
  const gen = new SecretGenerator({ source: caSvidSource(ca, svids), logger });
  const who = identity('shop', 'web');
  for (const extra of [{}, { disable_spiffe_cert_validation: 'true' }]) {
    const proxy = proxyFor('shop', 'web-1', who, '10.0.0.1', extra);
    resources(`secrets ${JSON.stringify(extra)} wildcard`, await gen.generate(proxy, { names: undefined }));
    resources(`secrets ${JSON.stringify(extra)} named`, await gen.generate(proxy, { names: new Set(['default', 'ROOTCA', 'ALL', who.spiffeId, 'spiffe://cluster.local', 'nope']) }));
  }
}

function bootstraps(label: string, snapshot: MeshSnapshot): void {
  const variants = [
    { xds: '10.0.0.100:15012', token: 'eyJ.token.sig', statsPort: 15090 },
    { xds: 'meshd.istio-system.svc:15012', als: '[fd00::1]:15012', statsPort: 0 },
  ];
  for (const w of snapshot.workloadEntries) {
    variants.forEach((v, i) => {
      const bootstrap = buildBootstrap({
        workload: w,
        mesh: snapshot.mesh,
        xds: parseEndpointAddress(v.xds),
        ...(v.als !== undefined ? { als: parseEndpointAddress(v.als) } : {}),
        rootsPem: '-----BEGIN CERTIFICATE-----\nMIIBroot\n-----END CERTIFICATE-----\n',
        controlPlaneSpiffeId: `spiffe://${snapshot.mesh.trustDomain}/ns/istio-system/sa/meshd`,
        adminPort: 15000,
        statsPort: v.statsPort,
        ...(v.token !== undefined ? { token: v.token } : {}),
      });
      const key = `${label} ${w.meta.namespace}/${w.meta.name} bootstrap#${i}`;
      out(`${key} yaml`, toYaml(bootstrap));
      out(`${key} json`, JSON.stringify(bootstrap));
      const decoded = decodeStrict('envoy.config.bootstrap.v3.Bootstrap', bootstrap);
      out(`${key} decoded`, decoded.valid ? decoded.bytes : JSON.stringify(decoded.errors));
    });
    [15090, 0].forEach((statsPort) => {
      const bootstrap = buildAgentBootstrap({
        workload: w,
        mesh: snapshot.mesh,
        xdsSocket: '/var/run/meshd/xds.sock',
        sdsSocket: '/var/run/meshd/sds.sock',
        als: parseEndpointAddress('meshd.istio-system.svc:15012'),
        controlPlaneSpiffeId: `spiffe://${snapshot.mesh.trustDomain}/ns/istio-system/sa/meshd`,
        adminPort: 15000,
        statsPort,
      });
      const key = `${label} ${w.meta.namespace}/${w.meta.name} agent-bootstrap stats ${statsPort}`;
      out(`${key} yaml`, toYaml(bootstrap));
      const decoded = decodeStrict('envoy.config.bootstrap.v3.Bootstrap', bootstrap);
      out(`${key} decoded`, decoded.valid ? decoded.bytes : JSON.stringify(decoded.errors));
    });
    out(`${label} ${w.meta.namespace}/${w.meta.name} grpc-bootstrap`, JSON.stringify(buildGrpcBootstrap({
      xdsServerUri: 'unix:///var/run/meshd/xds.sock',
      nodeId: `sidecar~${w.spec.address}~${w.meta.name}.${w.meta.namespace}~${w.meta.namespace}.svc.cluster.local`,
      namespace: w.meta.namespace,
      workload: w.meta.name,
      serviceAccount: w.spec.serviceAccount,
      trustDomain: snapshot.mesh.trustDomain,
      locality: { region: 'eu', zone: 'a' },
      labels: w.spec.labels,
      instanceIp: w.spec.address,
      certDir: '/var/run/meshd/certs',
      refreshIntervalSeconds: 300,
    })));
  }
}

function accessLogs(): void {
  const als = 'envoy.config.accesslog.v3.AccessLog';
  const options = { clusterName: 'other-als', bufferFlushIntervalMs: 1500, bufferSizeBytes: 0 };
  for (const d of ['inbound', 'outbound'] as const) {
    out(`access-log http ${d}`, encodeMessage(als, httpAccessLog(d)));
    out(`access-log http ${d} options`, encodeMessage(als, httpAccessLog(d, options)));
    out(`access-log tcp ${d}`, encodeMessage(als, tcpAccessLog(d, options)));
    out(`access-log listener ${d}`, encodeMessage(als, listenerNoFilterChainAccessLog(d, options)));
  }
  out('access-log tcp-options', encodeMessage('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.TcpAccessLogOptions', tcpProxyAccessLogOptions(2500)));
}

function checks(label: string, snapshot: MeshSnapshot): void {
  const clients = [{ kind: 'outside' as const }, ...snapshot.workloadEntries.map((workload) => ({ kind: 'workload' as const, workload }))];
  for (const target of snapshot.workloadEntries) {
    const ports = new Set<number>([...Object.values(target.spec.ports), 80, 5432, 8080, 9091]);
    for (const client of clients) {
      for (const port of ports) {
        const from = client.kind === 'outside' ? 'outside' : `${client.workload.meta.namespace}/${client.workload.meta.name}`;
        const to = `${target.meta.namespace}/${target.meta.name}:${port}`;
        let text: string;
        try {
          text = formatCheckResult(from, to, simulateConnection(snapshot, client, target, port));
        } catch (err) {
          text = `error: ${(err as Error).message}`;
        }
        out(`${label} check ${from} -> ${to}`, text);
      }
    }
  }
}

async function main(): Promise<void> {
  const snapshots: Array<[string, MeshSnapshot]> = [
    ['examples', await loadConfigDir('examples/config')],
    ['demo', await loadConfigDir('demo/config')],
    ...fixtures(),
  ];
  for (const [label, snapshot] of snapshots) {
    xds(label, snapshot);
    bootstraps(label, snapshot);
    checks(label, snapshot);
  }
  for (let i = 2; i + 1 < snapshots.length; i++) {
    pushPlans(`${snapshots[i]![0]}->${snapshots[i + 1]![0]}`, snapshots[i]![1], snapshots[i + 1]![1]);
    pushPlans(`${snapshots[i + 1]![0]}->${snapshots[i]![0]}`, snapshots[i + 1]![1], snapshots[i]![1]);
  }
  await secrets();
  accessLogs();
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
