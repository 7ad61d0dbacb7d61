/**
 * The load process of bench:xds: N Envoy-like ADS clients (SotW). Each proxy names its
 * WorkloadEntry in node metadata (NAMESPACE, WORKLOAD_NAME), sends its service account's
 * bearer token, and follows Envoy's conversation: CDS and LDS wildcard; on clusters, EDS for
 * every EDS cluster; on listeners, RDS for every route_config_name and the `default` and
 * `ROOTCA` secrets the TLS contexts refer to (SDS over ADS); every response is ACKed with
 * its version and nonce and the type's current names. Names are cached by response version
 * (a version is a content hash of the set, so equal versions mean equal sets), which keeps
 * the client's CPU per response small.
 *
 * After a config change (`change` writes the file), it records per proxy when a listener
 * version different from the one it held was received and ACKed.
 */
import { writeFileSync } from 'node:fs';
import { ChannelPool, countBy, wallNow, type TargetParams } from './channels.js';
import type { GrpcCall } from './h2-client.js';
import { serveIpc } from './ipc.js';
import { decodeDiscoveryResponse, edsNameOfCluster, encodeDiscoveryRequest, encodeNode, rdsNamesOfListener, resourceName, type DecodedResponse } from './xds-wire.js';

const T = {
  cds: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  eds: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  lds: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  rds: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  sds: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;
type Kind = keyof typeof T;
const KIND_OF = new Map<string, Kind>(Object.entries(T).map(([k, v]) => [v, k as Kind]));
const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const SECRETS = ['default', 'ROOTCA'];

export interface AdsWorkload {
  namespace: string;
  name: string;
  serviceAccount: string;
}

export interface AdsOpenParams {
  workloads: AdsWorkload[];
  proxiesPerWorkload: number;
  /** service account key `ns/sa` → bearer token */
  tokens: Record<string, string>;
  /** envoy: the full conversation; lds-only: one LDS wildcard request (the bare ceiling server). */
  mode: 'envoy' | 'lds-only';
  sds: boolean;
  /** Listener responses of this namespace's workloads are kept (for the ceiling replay). */
  captureNamespace?: string;
  /** Proxies opened at a time; the next batch opens when this one is synced (0: all at once). */
  batch: number;
  /** lds-only: wait until the streams of these workloads got their first listeners. */
  expectInitial?: string[];
  timeoutMs: number;
}

export interface AdsOpenResult {
  proxies: number;
  synced: number;
  allSyncedMs: number;
  syncMs: number[];
  failures: Record<string, number>;
  bytesReceived: number;
  responses: Record<string, number>;
  /** Resources per type held by the first proxy (shape of the mesh as a sidecar sees it). */
  sample: Record<string, number>;
}

interface TypeState {
  version: string;
  nonce: string;
  /** undefined: wildcard */
  names: string[] | undefined;
  /** Requested names not received yet. */
  pending: Set<string>;
}

interface Proxy {
  index: number;
  workload: string;
  namespace: string;
  call: GrpcCall;
  node: Buffer;
  nodeSent: boolean;
  types: Partial<Record<Kind, TypeState>>;
  held: Partial<Record<Kind, number>>;
  syncedAt: number;
  baselineLds: string;
  newLdsAt: number;
  newLdsAckAt: number;
  pushesAfter: number;
}

let pool: ChannelPool | undefined;
let proxies: Proxy[] = [];
let closing = false;
const failures: string[] = [];
let bytesReceived = 0;
const responses: Record<string, number> = {};
const captured = new Map<string, Buffer>();
let captureNs: string | undefined;
let armedAt = 0;
let lastResponseAt = 0;
const pushesByType: Record<string, number> = {};
let unexpectedLds = 0;
let changeNamespace = '';

const edsByVersion = new Map<string, string[]>();
const rdsByVersion = new Map<string, string[]>();

function edsNames(bytes: Buffer, r: DecodedResponse): string[] {
  let names = edsByVersion.get(r.versionInfo);
  if (!names) {
    names = [];
    for (const res of r.resources) {
      const n = edsNameOfCluster(bytes, res.start, res.end);
      if (n !== undefined) names.push(n);
    }
    names.sort();
    edsByVersion.set(r.versionInfo, names);
  }
  return names;
}

function rdsNames(bytes: Buffer, r: DecodedResponse): string[] {
  let names = rdsByVersion.get(r.versionInfo);
  if (!names) {
    const set = new Set<string>();
    for (const res of r.resources) rdsNamesOfListener(bytes, res.start, res.end, set);
    names = [...set].sort();
    rdsByVersion.set(r.versionInfo, names);
  }
  return names;
}

function send(p: Proxy, kind: Kind): void {
  const st = p.types[kind]!;
  const node = p.nodeSent ? undefined : p.node;
  p.nodeSent = true;
  p.call.write(encodeDiscoveryRequest({ typeUrl: T[kind], versionInfo: st.version, resourceNames: st.names ?? [], responseNonce: st.nonce, node }));
}

/** Envoy subscribes names it learns from clusters and listeners; a new set is sent with the type's current version and nonce. */
function subscribe(p: Proxy, kind: Kind, names: string[]): void {
  let st = p.types[kind];
  if (st && st.names === names) return;
  if (st && st.names && st.names.length === names.length && st.names.every((n, i) => n === names[i])) return;
  const before = new Set(st?.names ?? []);
  st ??= p.types[kind] = { version: '', nonce: '', names, pending: new Set() };
  st.names = names;
  for (const n of names) if (!before.has(n)) st.pending.add(n);
  for (const n of st.pending) if (!names.includes(n)) st.pending.delete(n);
  send(p, kind);
}

function isSynced(p: Proxy, sds: boolean): boolean {
  const { cds, eds, lds, rds } = p.types;
  if (!cds?.version || !lds?.version) return false;
  if (eds && eds.pending.size > 0) return false;
  if (rds && rds.pending.size > 0) return false;
  if (sds && (!p.types.sds || p.types.sds.pending.size > 0)) return false;
  return true;
}

function onMessage(p: Proxy, bytes: Buffer, params: AdsOpenParams, onSynced: (p: Proxy) => void): void {
  const now = performance.now();
  lastResponseAt = now;
  bytesReceived += bytes.length;
  const r = decodeDiscoveryResponse(bytes);
  const kind = KIND_OF.get(r.typeUrl);
  if (!kind) return;
  responses[kind] = (responses[kind] ?? 0) + 1;
  if (armedAt > 0) {
    pushesByType[kind] = (pushesByType[kind] ?? 0) + 1;
    p.pushesAfter += 1;
  }
  const st = (p.types[kind] ??= { version: '', nonce: '', names: undefined, pending: new Set() });
  st.version = r.versionInfo;
  st.nonce = r.nonce;
  p.held[kind] = kind === 'cds' || kind === 'lds' ? r.resources.length : (p.held[kind] ?? 0) + r.resources.length;
  if (kind === 'eds' || kind === 'rds' || kind === 'sds') {
    if (st.pending.size > 0) for (const res of r.resources) st.pending.delete(resourceName(bytes, res));
    send(p, kind);
  } else if (kind === 'cds') {
    if (params.mode === 'envoy') subscribe(p, 'eds', edsNames(bytes, r));
    send(p, 'cds');
  } else {
    if (params.mode === 'envoy') {
      subscribe(p, 'rds', rdsNames(bytes, r));
      if (params.sds) subscribe(p, 'sds', SECRETS);
    }
    send(p, 'lds');
    if (p.namespace === captureNs && (armedAt === 0 || !captured.has(`after:${p.workload}`))) {
      captured.set(`${armedAt === 0 ? 'before' : 'after'}:${p.workload}`, Buffer.from(bytes));
    }
    if (armedAt > 0 && p.newLdsAt === 0 && r.versionInfo !== p.baselineLds) {
      p.newLdsAt = now;
      p.newLdsAckAt = performance.now();
      if (p.namespace !== changeNamespace) unexpectedLds += 1;
    }
  }
  if (p.syncedAt === 0 && (params.mode === 'envoy' ? isSynced(p, params.sds) : true)) {
    p.syncedAt = performance.now();
    onSynced(p);
  }
}

serveIpc({
  async connect(target: TargetParams): Promise<void> {
    pool = new ChannelPool(target);
    await pool.connected();
  },

  open(params: AdsOpenParams): Promise<AdsOpenResult> {
    captureNs = params.captureNamespace;
    const total = params.workloads.length * params.proxiesPerWorkload;
    const batch = params.batch > 0 ? params.batch : total;
    const expect = new Set(params.expectInitial ?? []);
    let synced = 0;
    let settled = 0;
    let opened = 0;
    let opening = false;
    const started = performance.now();
    return new Promise((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const times = proxies.filter((p) => p.syncedAt > 0).map((p) => p.syncedAt - started);
        resolve({
          proxies: total, synced, allSyncedMs: synced === total ? Math.max(...times) : Number.NaN, syncMs: times,
          failures: countBy(failures), bytesReceived, responses: { ...responses }, sample: { ...proxies[0]?.held },
        });
      };
      const timer = setTimeout(finish, params.timeoutMs);
      // A batch opens once every proxy of the previous one is synced (or failed): a fleet that
      // comes up in waves, as Envoys do behind a rollout, rather than 10,000 at the same instant.
      const openBatches = (): void => {
        if (opening) return;
        opening = true;
        while (settled >= opened && opened < total) {
          const end = Math.min(total, opened + batch);
          while (opened < end) openOne(opened++);
        }
        opening = false;
        if (settled === total) finish();
      };
      const onSettled = (): void => {
        settled += 1;
        if (settled === total) finish();
        else if (settled >= opened) openBatches();
      };
      const onSynced = (): void => {
        synced += 1;
        onSettled();
      };
      const openOne = (i: number): void => {
        const w = params.workloads[i % params.workloads.length]!;
        const replica = Math.floor(i / params.workloads.length);
        const key = `${w.namespace}/${w.name}`;
        const token = params.tokens[`${w.namespace}/${w.serviceAccount}`]!;
        const p: Proxy = {
          index: i, workload: key, namespace: w.namespace, call: undefined as unknown as GrpcCall,
          node: encodeNode({
            id: `sidecar~127.0.0.1~${w.name}-r${replica}.${w.namespace}~${w.namespace}.svc.cluster.local`,
            cluster: `${w.serviceAccount}.${w.namespace}`,
            metadata: { NAMESPACE: w.namespace, WORKLOAD_NAME: w.name },
          }),
          nodeSent: false, types: {}, held: {}, syncedAt: 0, baselineLds: '', newLdsAt: 0, newLdsAckAt: 0, pushesAfter: 0,
        };
        p.call = pool!.forStream(i).call(ADS_PATH, { authorization: `Bearer ${token}`, 'x-bench-workload': key }, {
          message: (bytes) => onMessage(p, bytes, params, onSynced),
          end: (code, details) => {
            if (closing) return;
            failures.push(code === -1 ? `transport: ${details}` : `grpc ${code}: ${details.slice(0, 100)}`);
            if (p.syncedAt === 0) onSettled();
          },
        });
        proxies.push(p);
        if (params.mode === 'envoy') {
          p.types.cds = { version: '', nonce: '', names: undefined, pending: new Set() };
          p.types.lds = { version: '', nonce: '', names: undefined, pending: new Set() };
          send(p, 'cds');
          send(p, 'lds');
        } else {
          p.types.lds = { version: '', nonce: '', names: undefined, pending: new Set() };
          send(p, 'lds');
          // Streams without captured listeners get nothing from the bare server: connected is all they wait for.
          if (!expect.has(key)) { p.syncedAt = performance.now(); onSynced(); }
        }
      };
      openBatches();
    });
  },

  /** Writes the config file (the change) and starts measuring from that instant. */
  change(p: { file: string; content: string; namespace: string }): number {
    changeNamespace = p.namespace;
    for (const x of proxies) { x.baselineLds = x.types.lds?.version ?? ''; x.newLdsAt = 0; x.newLdsAckAt = 0; x.pushesAfter = 0; }
    for (const k of Object.keys(pushesByType)) delete pushesByType[k];
    unexpectedLds = 0;
    armedAt = performance.now();
    const at = wallNow();
    writeFileSync(p.file, p.content);
    return at;
  },

  /**
   * Waits until every proxy of the changed namespace ACKed new listeners, then until no
   * response arrived for `quietMs` (to count every push the change caused).
   */
  async awaitConvergence(p: { quietMs: number; timeoutMs: number }): Promise<{
    expected: number; converged: number; convergeMs: number[]; receiveMs: number[]; unexpectedLds: number;
    proxiesPushed: number; pushesByType: Record<string, number>; firstMs: number; failures: Record<string, number>;
  }> {
    const deadline = performance.now() + p.timeoutMs;
    // Proxies whose stream failed earlier cannot converge; they are reported among the failures.
    const expected = proxies.filter((x) => x.namespace === changeNamespace && !x.call.isEnded);
    while (performance.now() < deadline && expected.some((x) => x.newLdsAckAt === 0)) await new Promise((r) => setTimeout(r, 20));
    while (performance.now() < deadline && performance.now() - lastResponseAt < p.quietMs) await new Promise((r) => setTimeout(r, 50));
    const done = expected.filter((x) => x.newLdsAckAt > 0);
    const firsts = proxies.filter((x) => x.newLdsAt > 0).map((x) => x.newLdsAt - armedAt);
    return {
      expected: expected.length,
      converged: done.length,
      convergeMs: done.map((x) => x.newLdsAckAt - armedAt),
      receiveMs: done.map((x) => x.newLdsAt - armedAt),
      unexpectedLds,
      proxiesPushed: proxies.filter((x) => x.pushesAfter > 0).length,
      pushesByType: { ...pushesByType },
      firstMs: firsts.length ? Math.min(...firsts) : Number.NaN,
      failures: countBy(failures),
    };
  },

  /** Listener responses captured for the capture namespace: before and after the change, per workload. */
  captured(): { before: Map<string, Buffer>; after: Map<string, Buffer> } {
    const before = new Map<string, Buffer>();
    const after = new Map<string, Buffer>();
    for (const [k, v] of captured) {
      const [when, workload] = [k.slice(0, k.indexOf(':')), k.slice(k.indexOf(':') + 1)];
      (when === 'before' ? before : after).set(workload, v);
    }
    return { before, after };
  },

  close(): void {
    closing = true;
    for (const x of proxies) x.call.cancel();
    proxies = [];
    pool?.close();
    pool = undefined;
  },
});
