/**
 * The ceiling: a bare grpc-js server with the same server options as meshd, no
 * authentication, no discovery core, no generators. It hands each stream bytes that were
 * captured from meshd in the same run, so what it measures is the cost of gRPC, HTTP/2 and
 * the sockets alone for the same streams and the same bytes.
 *
 * - sds: StreamSecrets writes one pre-encoded DiscoveryResponse on a stream's first request
 *   and ignores everything after it (the ACKs).
 * - ads: StreamAggregatedResources answers a stream's first request with its workload's
 *   captured listeners (if any), then, when the watched policy file changes (fs.watch and the
 *   same 100 ms debounce meshd's config watcher uses, istiod's PILOT_DEBOUNCE_AFTER), writes
 *   each affected workload's captured new LDS response to every stream of that workload (the
 *   next change writes the captured old one back, and so on).
 */
import { Server, ServerCredentials, type ServerDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { emit, serveIpc } from './ipc.js';
import { GRPC_SERVER_OPTIONS } from '../../src/server/grpc-server-options.js';

const pass = (b: Buffer): Buffer => b;
function bidi(path: string): ServiceDefinition[string] {
  return { path, requestStream: true, responseStream: true, requestSerialize: pass, requestDeserialize: pass, responseSerialize: pass, responseDeserialize: pass, originalName: path.split('/').pop()! };
}

const SDS = { StreamSecrets: bidi('/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets') } as ServiceDefinition;
const ADS = { StreamAggregatedResources: bidi('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources') } as ServiceDefinition;

export interface BareStartParams {
  mode: 'sds' | 'ads';
  /** sds: the one response every stream gets. */
  response?: Buffer;
  /** ads: workload key → captured DiscoveryResponse bytes before and after the change. */
  before?: Map<string, Buffer>;
  after?: Map<string, Buffer>;
  /** ads: the policy file whose change triggers the push. */
  watchFile?: string;
  debounceMs?: number;
  tls?: { keyPem: string; chainPem: string };
}

let server: Server | undefined;
let watcher: FSWatcher | undefined;
let streams = 0;
let flip = 0;
const byWorkload = new Map<string, Set<ServerDuplexStream<Buffer, Buffer>>>();

serveIpc({
  async start(p: BareStartParams): Promise<{ port: number }> {
    server = new Server(GRPC_SERVER_OPTIONS);
    if (p.mode === 'sds') {
      const response = p.response!;
      server.addService(SDS, {
        StreamSecrets(call: ServerDuplexStream<Buffer, Buffer>) {
          streams += 1;
          let first = true;
          call.on('data', () => {
            if (!first) return;
            first = false;
            call.write(response);
          });
          call.on('error', () => undefined);
          call.on('close', () => { streams -= 1; });
        },
      });
    } else {
      server.addService(ADS, {
        StreamAggregatedResources(call: ServerDuplexStream<Buffer, Buffer>) {
          streams += 1;
          const key = String(call.metadata.get('x-bench-workload')[0] ?? '');
          let set = byWorkload.get(key);
          if (!set) byWorkload.set(key, (set = new Set()));
          set.add(call);
          let first = true;
          call.on('data', () => {
            if (!first) return;
            first = false;
            const initial = p.before?.get(key);
            if (initial) call.write(initial);
          });
          call.on('error', () => undefined);
          call.on('close', () => { streams -= 1; set.delete(call); });
        },
      });
      if (p.watchFile) {
        const file = basename(p.watchFile);
        let timer: NodeJS.Timeout | undefined;
        watcher = watch(dirname(p.watchFile), (_event, name) => {
          if (name !== file) return;
          if (timer) clearTimeout(timer);
          timer = setTimeout(() => {
            timer = undefined;
            const startedAt = performance.timeOrigin + performance.now();
            let written = 0;
            // Changes alternate (→STRICT, →PERMISSIVE, ...): the captured responses after, then before.
            const replay = flip++ % 2 === 0 ? p.after : p.before;
            for (const [workload, bytes] of replay ?? []) {
              for (const call of byWorkload.get(workload) ?? []) { call.write(bytes); written += 1; }
            }
            emit('pushed', { startedAt, endedAt: performance.timeOrigin + performance.now(), written });
          }, p.debounceMs ?? 100);
        });
      }
    }
    const creds = p.tls
      ? ServerCredentials.createSsl(null, [{ private_key: Buffer.from(p.tls.keyPem), cert_chain: Buffer.from(p.tls.chainPem) }], false)
      : ServerCredentials.createInsecure();
    const port = await new Promise<number>((resolve, reject) => server!.bindAsync('127.0.0.1:0', creds, (err, port) => (err ? reject(err) : resolve(port))));
    return { port };
  },
  connected(): number {
    return streams;
  },
  gc(): boolean {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    return gc !== undefined;
  },
  async stop(): Promise<void> {
    watcher?.close();
    server?.forceShutdown();
    setImmediate(() => process.exit(0));
  },
});
process.once('SIGTERM', () => { server?.forceShutdown(); process.exit(0); });
