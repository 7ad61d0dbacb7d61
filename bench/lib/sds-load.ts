/**
 * The load process of bench:sds: N Envoy-like SDS clients. Each proxy opens StreamSecrets
 * with its own node id and a bearer token, asks for `default` and `ROOTCA` in one request
 * (node on the first request only), ACKs every response with the version and nonce it got,
 * and records when it first held both secrets and when a rotated `default` arrived.
 */
import { ChannelPool, countBy, wallNow, type TargetParams } from './channels.js';
import type { GrpcCall } from './h2-client.js';
import { serveIpc } from './ipc.js';
import { decodeDiscoveryResponse, encodeDiscoveryRequest, encodeNode, resourceName } from './xds-wire.js';

const SECRET = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
const NAMES = ['default', 'ROOTCA'];
const PATH = '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets';

export interface SdsOpenParams {
  proxies: number;
  tokens: string[];
  /** Node ids are `${nodePrefix}-${i}`; a new prefix per run keeps SVID caches apart. */
  nodePrefix: string;
  timeoutMs: number;
}

export interface SdsOpenResult {
  proxies: number;
  held: number;
  /** From the first stream opened to the last proxy holding both secrets, ms. */
  allHeldMs: number;
  /** Per proxy: request written → first response, ms. */
  firstSecretMs: number[];
  failures: Record<string, number>;
  /** One response as meshd sent it (for the bare server ceiling). */
  sampleResponse?: Buffer;
  bytesReceived: number;
}

interface Proxy {
  call: GrpcCall;
  sentAt: number;
  firstAt: number;
  heldAt: number;
  hasDefault: boolean;
  hasRoot: boolean;
  lastDefault?: Buffer;
  rotatedAt: number;
  rotatedNew: boolean;
}

let pool: ChannelPool | undefined;
let proxies: Proxy[] = [];
let armedAt = 0;
let bytesReceived = 0;
let closing = false;
/** Each open() is a generation: streams of an earlier one report nothing when they end. */
let generation = 0;
const failures: string[] = [];

serveIpc({
  async connect(target: TargetParams): Promise<void> {
    pool = new ChannelPool(target);
    await pool.connected();
  },

  open(p: SdsOpenParams): Promise<SdsOpenResult> {
    proxies = [];
    closing = false;
    failures.length = 0;
    bytesReceived = 0;
    armedAt = 0;
    const gen = ++generation;
    let held = 0;
    let sample: Buffer | undefined;
    const started = performance.now();
    return new Promise((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const last = Math.max(...proxies.map((x) => x.heldAt));
        resolve({
          proxies: p.proxies, held, allHeldMs: held === p.proxies ? last - started : Number.NaN,
          firstSecretMs: proxies.filter((x) => x.firstAt > 0).map((x) => x.firstAt - x.sentAt),
          failures: countBy(failures), sampleResponse: sample, bytesReceived,
        });
      };
      const timer = setTimeout(finish, p.timeoutMs);
      for (let i = 0; i < p.proxies; i++) {
        const node = encodeNode({ id: `${p.nodePrefix}-${i}`, cluster: 'bench', metadata: {} });
        const proxy: Proxy = { call: undefined as unknown as GrpcCall, sentAt: 0, firstAt: 0, heldAt: 0, hasDefault: false, hasRoot: false, rotatedAt: 0, rotatedNew: false };
        proxy.call = pool!.forStream(i).call(PATH, { authorization: `Bearer ${p.tokens[i % p.tokens.length]}` }, {
          message(bytes) {
            const now = performance.now();
            bytesReceived += bytes.length;
            const r = decodeDiscoveryResponse(bytes);
            if (proxy.firstAt === 0) {
              proxy.firstAt = now;
              sample ??= Buffer.from(bytes);
            }
            for (const res of r.resources) {
              const name = resourceName(bytes, res);
              if (name === 'ROOTCA') proxy.hasRoot = true;
              else if (name === 'default') {
                const body = bytes.subarray(res.start, res.end);
                if (armedAt > 0 && proxy.hasDefault && proxy.rotatedAt === 0) {
                  proxy.rotatedAt = now;
                  proxy.rotatedNew = !proxy.lastDefault!.equals(body);
                }
                proxy.hasDefault = true;
                proxy.lastDefault = Buffer.from(body);
              }
            }
            // ACK: the version and nonce received, the same names (Envoy's SotW ACK).
            proxy.call.write(encodeDiscoveryRequest({ typeUrl: SECRET, versionInfo: r.versionInfo, resourceNames: NAMES, responseNonce: r.nonce }));
            if (proxy.heldAt === 0 && proxy.hasDefault && proxy.hasRoot) {
              proxy.heldAt = now;
              held += 1;
              if (held === p.proxies) finish();
            }
          },
          end(code, details) {
            if (!closing && gen === generation) failures.push(code === -1 ? `transport: ${details}` : `grpc ${code}: ${details.slice(0, 80)}`);
          },
        });
        proxy.sentAt = performance.now();
        proxy.call.write(encodeDiscoveryRequest({ typeUrl: SECRET, resourceNames: NAMES, node }));
        proxies.push(proxy);
      }
    });
  },

  /** From now on, a `default` on a stream that already had one counts as the rotated SVID. */
  armRotation(): number {
    armedAt = performance.now();
    for (const x of proxies) { x.rotatedAt = 0; x.rotatedNew = false; }
    return wallNow();
  },

  /** Waits until every proxy got its rotated SVID (or the timeout); first and last arrival. */
  async awaitRotation(p: { timeoutMs: number }): Promise<{ rotated: number; withNewBytes: number; firstToLastMs: number; armToLastMs: number; failures: Record<string, number> }> {
    const deadline = performance.now() + p.timeoutMs;
    while (performance.now() < deadline && proxies.some((x) => x.rotatedAt === 0)) await new Promise((r) => setTimeout(r, 50));
    const times = proxies.filter((x) => x.rotatedAt > 0).map((x) => x.rotatedAt);
    const first = Math.min(...times);
    const last = Math.max(...times);
    return {
      rotated: times.length,
      withNewBytes: proxies.filter((x) => x.rotatedNew).length,
      firstToLastMs: times.length ? last - first : Number.NaN,
      armToLastMs: times.length ? last - armedAt : Number.NaN,
      failures: countBy(failures),
    };
  },

  close(): void {
    closing = true;
    for (const x of proxies) x.call.cancel();
    proxies = [];
    pool?.close();
    pool = undefined;
  },
});
