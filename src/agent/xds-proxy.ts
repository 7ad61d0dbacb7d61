import {
  Client, Metadata, Server, ServerCredentials, credentials, status,
  type ClientDuplexStream, type MethodDefinition, type ServerDuplexStream, type ServiceDefinition, type StatusObject,
} from '@grpc/grpc-js';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../ca/errors.js';
import { addGuardedService } from '../common/guarded-service.js';
import { HandlerErrors } from '../common/handler-errors.js';

/**
 * The agent's local xDS proxy, as istio-agent runs one for proxyless gRPC (its bootstrap points
 * at unix:///etc/istio/proxy/XDS: pkg/istio-agent/xds_proxy.go).
 *
 * Why it exists: grpc-js-xds's bootstrap knows only `insecure` and `google_default` channel
 * credentials and has no call credentials, so a gRPC workload cannot present meshd's bearer
 * token or its SVID to meshd by itself. The workload talks plaintext to this proxy on a Unix
 * socket (mode 0600: only the workload's user can connect), and the proxy opens each stream to
 * meshd over TLS, verifying meshd's SPIFFE ID and presenting the workload's own SVID, so meshd
 * admits the node against the identity the agent proved. Messages pass through as bytes, so
 * whatever the workload and meshd say (SotW or delta, any type) is untouched.
 */
export interface XdsProxyOptions {
  /** Path of the Unix socket to serve on. */
  socketPath: string;
  /** host:port of meshd's TLS gRPC port. */
  meshdAddress: string;
  meshdSpiffeId: string;
  /** The workload's current SVID and the roots that may sign meshd's certificate; undefined until issued. */
  credentials: () => Promise<{ keyPem: string; chainPem: string; rootsPem: string } | undefined>;
  logger: Logger;
}

const ADS = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
const METHODS = ['StreamAggregatedResources', 'DeltaAggregatedResources'] as const;
const bytes = (b: Buffer): Buffer => b;

function pipeDefinition(): ServiceDefinition {
  const def: Record<string, MethodDefinition<Buffer, Buffer>> = {};
  for (const m of METHODS) {
    def[m] = {
      path: `/${ADS}/${m}`, originalName: m, requestStream: true, responseStream: true,
      requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes,
    };
  }
  return def as unknown as ServiceDefinition;
}

function uriSans(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

export class XdsProxy {
  private server: Server | undefined;
  private readonly open = new Set<{ cancel(): void }>();

  constructor(private readonly opts: XdsProxyOptions) {}

  async start(): Promise<void> {
    const { socketPath } = this.opts;
    await mkdir(dirname(socketPath), { recursive: true, mode: 0o755 });
    const existing = await lstat(socketPath).catch(() => undefined);
    if (existing?.isSocket()) await unlink(socketPath); // a stale socket of a previous run
    else if (existing) throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
    const server = new Server();
    const implementation: Record<string, (call: ServerDuplexStream<Buffer, Buffer>) => Promise<void>> = {};
    for (const m of METHODS) implementation[m] = (call) => this.pipe(m, call);
    // Guarded like meshd's own services: an unexpected error ends that stream with INTERNAL, not the agent.
    addGuardedService(server, pipeDefinition(), implementation, new HandlerErrors({ logger: this.opts.logger.child({ component: 'xds-proxy' }) }));
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(),
      (err) => (err ? reject(new Error(`cannot listen on unix:${socketPath}: ${err.message}`)) : resolve())));
    await chmod(socketPath, 0o600);
    this.server = server;
    this.opts.logger.info({ socket: socketPath, meshd: this.opts.meshdAddress }, 'local xDS proxy listening');
  }

  async stop(): Promise<void> {
    for (const u of this.open) u.cancel();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      // Real time: the grace for the workload's streams to close over the socket.
      const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, 2000);
      server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
    await unlink(this.opts.socketPath).catch(() => undefined);
  }

  private async pipe(method: string, down: ServerDuplexStream<Buffer, Buffer>): Promise<void> {
    const log = this.opts.logger.child({ component: 'xds-proxy', method });
    let finished = false;
    const finish = (s: Partial<StatusObject> & { code: status }): void => {
      if (finished) return;
      finished = true;
      if (down.cancelled || down.destroyed) return;
      if (s.code === status.OK) down.end();
      else down.emit('error', Object.assign(new Error(s.details ?? ''), { code: s.code, details: s.details ?? '' }));
    };
    let material;
    try {
      material = await this.opts.credentials();
    } catch (e) {
      finish({ code: status.UNAVAILABLE, details: `the agent cannot reach meshd yet: ${errorMessage(e)}` });
      return;
    }
    if (!material) {
      finish({ code: status.UNAVAILABLE, details: 'the agent has no certificate yet; retry shortly' });
      return;
    }
    const expected = this.opts.meshdSpiffeId;
    const creds = credentials.createSsl(Buffer.from(material.rootsPem), Buffer.from(material.keyPem), Buffer.from(material.chainPem), {
      checkServerIdentity: (_h, cert) => (uriSans(cert).includes(expected) ? undefined : new Error(`meshd presented ${cert.subjectaltname ?? 'no SAN'}, not ${expected}`)),
    });
    // One channel per stream: it carries the SVID current when the stream opened.
    const client = new Client(this.opts.meshdAddress, creds, { 'grpc.ssl_target_name_override': 'meshd', 'grpc.use_local_subchannel_pool': 1 });
    const up: ClientDuplexStream<Buffer, Buffer> = client.makeBidiStreamRequest(`/${ADS}/${method}`, bytes, bytes, new Metadata());
    const handle = { cancel: () => up.cancel() };
    this.open.add(handle);
    up.on('data', (b: Buffer) => { if (!finished && !down.cancelled) down.write(b); });
    up.on('status', (s: StatusObject) => {
      this.open.delete(handle);
      client.close();
      if (s.code !== status.OK && s.code !== status.CANCELLED) log.warn({ code: status[s.code], details: s.details }, 'meshd ended the xDS stream');
      finish(s);
    });
    up.on('error', () => { /* reported through 'status' */ });
    down.on('data', (b: Buffer) => up.write(b));
    down.on('end', () => up.end());
    const gone = (): void => { finished = true; up.cancel(); };
    down.on('cancelled', gone);
    down.on('close', () => { if (!finished) gone(); });
    down.on('error', () => undefined);
  }
}
