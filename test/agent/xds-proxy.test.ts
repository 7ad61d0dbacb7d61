import t from 'tap';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { defaultXdsSocket } from '../../src/agent/grpc-bootstrap.js';
import { XdsTestClient, type SotwResponse, type SotwStream } from '../xds/helpers/xds-client.js';
import { EnvoyAlsStream, httpEntry, identifier } from '../telemetry/helpers/envoy-als.js';
import { ACCESS_LOG_NAMES } from '../../src/telemetry/access-log-config.js';
import { CLIENT_NS, freePort, SERVICE_HOST, SERVICE_PORT, startProxylessMesh, type ProxylessMesh } from '../proxyless/helpers/mesh.js';
import { until } from '../helpers/until.js';

/**
 * The agent's xDS proxy while meshd goes away and comes back (meshd closed and started again on
 * the same port, data dir and config): the workload's stream stays open, a new stream (a
 * restarted workload) and a new channel in a running workload get their configuration from the
 * agent, and once meshd is back the agent resubscribes and the workload follows meshd again.
 * Outcomes are polled with deadlines; nothing waits a fixed time.
 */

// Two meshes, each with meshd started twice: minutes on a loaded machine.
t.setTimeout(300_000);

const CALLER_NODE = {
  id: `sidecar~127.0.0.1~caller.${CLIENT_NS}~${CLIENT_NS}.svc.cluster.local`,
  metadata: { NAMESPACE: CLIENT_NS, WORKLOAD_NAME: 'caller' },
};

const names = (r: SotwResponse): string[] => r.resources.map((x) => x.name).sort();

async function metric(mesh: ProxylessMesh, name: string): Promise<number> {
  const text = await mesh.agents.client.registry.metrics();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

/** Subscribes CDS and LDS (wildcard, as Envoy does) and ACKs both; returns the responses. */
async function syncEnvoyLike(ads: SotwStream): Promise<{ cds: SotwResponse; lds: SotwResponse }> {
  ads.subscribe(TypeUrl.Cluster, []);
  const cds = await ads.next(10_000);
  ads.ack(cds);
  ads.subscribe(TypeUrl.Listener, []);
  const lds = await ads.next(10_000);
  ads.ack(lds);
  return { cds, lds };
}

t.test('Envoy-like ADS through the agent: the stream outlives meshd, a new stream is answered from the last configuration with meshd\'s versions, and both re-sync when meshd is back', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ servers: [{ name: 'greeter-1', port }] });
  t.teardown(() => mesh.close());
  const socket = `unix:${defaultXdsSocket(mesh.certDirs.client)}`;
  const workload = new XdsTestClient(socket);
  t.teardown(() => workload.close());

  const ads = workload.sotw('ads', { node: CALLER_NODE });
  let adsEnded: string | undefined;
  void ads.status.then((s) => { adsEnded = `${s.code}: ${s.details}`; });
  const before = await syncEnvoyLike(ads);
  t.ok(before.cds.resources.some((r) => r.name === `outbound|${SERVICE_PORT}||${SERVICE_HOST}`), 'meshd\'s clusters through the agent');
  t.notOk(before.cds.nonce.startsWith('agent-'), 'meshd\'s own response, passed through');

  await mesh.stopMeshd();
  await until(async () => (await metric(mesh, 'meshd_agent_xds_streams_without_meshd')) === 1 || undefined, 10_000, 'the agent noticing meshd is gone');
  t.equal(adsEnded, undefined, 'the workload\'s stream is still open with meshd gone');

  // A restarted workload: the same node, a new stream, meshd unreachable.
  const restarted = workload.sotw('ads', { node: CALLER_NODE });
  restarted.subscribe(TypeUrl.Cluster, []);
  const cached = await restarted.next(10_000);
  t.equal(cached.version_info, before.cds.version_info, 'answered with meshd\'s version of the clusters');
  t.same(names(cached), names(before.cds), 'and the same clusters');
  t.same(cached.resources.map((r) => r.value.toString('base64')).sort(), before.cds.resources.map((r) => r.value.toString('base64')).sort(), 'byte for byte as meshd encoded them');
  t.match(cached.nonce, /^agent-/, 'with a nonce of the agent\'s own');
  restarted.ack(cached);
  restarted.subscribe(TypeUrl.Listener, []);
  const cachedLds = await restarted.next(10_000);
  t.equal(cachedLds.version_info, before.lds.version_info);
  t.same(names(cachedLds), names(before.lds), 'listeners too');
  restarted.ack(cachedLds);
  t.ok(await metric(mesh, 'meshd_agent_xds_cached_responses_total') >= 2, 'counted as answers from the last configuration');

  // A subscription the agent knows nothing of gets no answer (the workload waits for meshd), and no error.
  ads.subscribe(TypeUrl.Route, ['no-such-route']);
  await ads.expectSilence(300);

  // meshd comes back with a changed config: both streams follow it through the agent.
  await mesh.startMeshd();
  await until(async () => (await metric(mesh, 'meshd_agent_xds_streams_without_meshd')) === 0 || undefined, 15_000, 'the agent reconnecting to meshd');
  const drain = async (s: SotwStream, type: string, want: (r: SotwResponse) => boolean, what: string): Promise<SotwResponse> => {
    for (;;) {
      const r = await s.next(15_000);
      s.ack(r);
      if (r.type_url === type && want(r)) return r;
      t.comment(`${what}: ${r.type_url} ${r.version_info} (${r.nonce})`);
    }
  };
  await mesh.writeConfig('extra.yaml', `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: extra
  namespace: ${CLIENT_NS}
spec:
  hosts: [extra.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - number: 443
    name: tls
    protocol: TLS
`);
  const hasExtra = (r: SotwResponse): boolean => r.resources.some((x) => x.name.includes('extra.example.com'));
  const oldStream = await drain(ads, TypeUrl.Cluster, hasExtra, 'old stream');
  const newStream = await drain(restarted, TypeUrl.Cluster, hasExtra, 'new stream');
  t.notOk(oldStream.nonce.startsWith('agent-'), 'the stream that outlived the outage gets meshd\'s push');
  t.notOk(newStream.nonce.startsWith('agent-'), 'so does the one opened during it');
  t.equal(oldStream.version_info, newStream.version_info, 'the same clusters');
  await until(() => {
    const conns = mesh.meshd.core.connections().filter((c) => c.proxyId === CALLER_NODE.id);
    return conns.length === 2 && conns.every((c) => c.types.find((x) => x.type === 'cds')?.versionAcked === oldStream.version_info) || undefined;
  }, 10_000, 'meshd seeing both streams ACK the new clusters');
  t.pass('meshd sees both workload streams, each ACKing its latest clusters');
  t.equal(adsEnded, undefined, 'the first stream never ended');
});

t.test('access logs through the agent\'s socket reach meshd under the agent\'s SVID; another identity\'s node is refused with meshd\'s reason', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ servers: [{ name: 'greeter-1', port }] });
  t.teardown(() => mesh.close());
  const workload = new XdsTestClient(`unix:${defaultXdsSocket(mesh.certDirs.client)}`);
  t.teardown(() => workload.close());
  const meshdMetric = async (name: string): Promise<number> => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(await mesh.meshd.metricsText());
    return m ? Number(m[1]) : 0;
  };
  const entriesBefore = await meshdMetric('meshd_accesslog_entries_total');
  const logs = new EnvoyAlsStream(workload.client, identifier(CALLER_NODE, ACCESS_LOG_NAMES.outbound));
  await logs.sendHttp([httpEntry({ authority: `${SERVICE_HOST}:${SERVICE_PORT}`, responseCode: 200, durationMs: 3 })]);
  await until(async () => (await meshdMetric('meshd_accesslog_streams')) === 1 || undefined, 10_000, 'meshd holding the stream');
  await until(async () => (await meshdMetric('meshd_accesslog_entries_total')) > entriesBefore || undefined, 10_000, 'meshd ingesting the entry');
  t.pass('meshd took the stream and its entry, authenticated by the agent\'s SVID');
  t.same(await logs.end(), { code: 0, details: '' }, 'meshd\'s answer reaches the workload');

  // A node of another service account on the caller's agent: meshd refuses it, and says why.
  const other = new EnvoyAlsStream(workload.client, identifier({ id: 'sidecar~127.0.0.1~greeter-1.grpc-server~grpc-server.svc.cluster.local', metadata: { NAMESPACE: 'grpc-server', WORKLOAD_NAME: 'greeter-1' } }, ACCESS_LOG_NAMES.inbound));
  await other.sendHttp([httpEntry({ responseCode: 200 })]);
  const refused = await other.done;
  t.equal(refused.code, 7, `PERMISSION_DENIED: ${refused.details}`);
  t.match(refused.details, /caller/, 'naming the identity the agent proved');
});
