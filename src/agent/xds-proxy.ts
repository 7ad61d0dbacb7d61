import {
  Server, ServerCredentials, status,
  type Client, type ClientWritableStream, type Metadata, type MethodDefinition, type ServerDuplexStream, type ServerReadableStream,
  type ServiceDefinition, type StatusObject, type sendUnaryData,
} from '@grpc/grpc-js';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import { errorMessage } from '../ca/errors.js';
import { addGuardedService } from '../common/guarded-service.js';
import { HandlerErrors } from '../common/handler-errors.js';
import { AGENT_BACKOFF, AGENT_SHUTDOWN_GRACE_MS } from '../common/defaults.js';
import { shutdownGrpcServer } from '../common/grpc-shutdown.js';
import type { BackoffPolicy } from '../common/renewal-policy.js';
import { ACCESS_LOG_SERVICE_NAME } from '../telemetry/als-service.js';
import type { MeshdCredential } from './credentials.js';
import { meshdChannel } from './meshd-channel.js';
import { LastConfig } from './last-config.js';
import { SotwRelay } from './sotw-relay.js';

/**
 * The agent's local xDS proxy, as istio-agent runs one (its bootstrap points at
 * unix:///etc/istio/proxy/XDS: pkg/istio-agent/xds_proxy.go).
 *
 * Why it exists: grpc-js-xds's bootstrap knows only `insecure` and `google_default` channel
 * credentials and has no call credentials, so a gRPC workload cannot present meshd's bearer
 * token or its SVID to meshd by itself; an Envoy fronted by the agent holds neither. The
 * workload talks plaintext to this proxy on a Unix socket (mode 0600: only the workload's user
 * can connect), and the proxy opens each stream to meshd over TLS, verifying meshd's SPIFFE ID
 * and presenting the agent's current credential (the SVID while valid, else the join token:
 * credentials.ts), so meshd admits the node against the identity the agent proved.
 *
 * - ADS state of the world: relayed by SotwRelay, which keeps the workload's stream open while
 *   meshd is unreachable and answers it from the last configuration meshd sent.
 * - ADS delta: passed through as bytes; it ends when meshd's side ends.
 * - Access logs (envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs): passed through
 *   as bytes, so an Envoy behind the agent sends its access logs to meshd through the same
 *   socket; when meshd is gone the stream ends and Envoy opens a new one for its next logs.
 */
export interface XdsProxyOptions {
  /** Path of the Unix socket to serve on. */
  socketPath: string;
  /** host:port of meshd's TLS gRPC port. */
  meshdAddress: string;
  meshdSpiffeId: string;
  /** What to present to meshd now (throws when the agent has no credential). */
  credential: () => Promise<MeshdCredential>;
  /** Roots that may sign meshd's serving certificate. */
  trustedRoots: () => Promise<string>;
  clock: Clock;
  random?: () => number;
  /** Reconnect backoff; default AGENT_BACKOFF. */
  backoff?: BackoffPolicy;
  /** Where the proxy's series go (meshd_agent_xds_*); none = not exported. */
  registry?: Registry;
  logger: Logger;
}

const ADS = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
const SOTW = 'StreamAggregatedResources';
const DELTA = 'DeltaAggregatedResources';
const ALS = 'StreamAccessLogs';
const bytes = (b: Buffer): Buffer => b;

function method(service: string, name: string, requestStream: boolean, responseStream: boolean): MethodDefinition<Buffer, Buffer> {
  return {
    path: `/${service}/${name}`, originalName: name, requestStream, responseStream,
    requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes,
  };
}

const adsDefinition = (): ServiceDefinition => ({ [SOTW]: method(ADS, SOTW, true, true), [DELTA]: method(ADS, DELTA, true, true) }) as unknown as ServiceDefinition;
const alsDefinition = (): ServiceDefinition => ({ [ALS]: method(ACCESS_LOG_SERVICE_NAME, ALS, true, false) }) as unknown as ServiceDefinition;

interface ProxyMetrics {
  upstreamDown: Gauge<string>;
  cachedAnswers: Counter<string>;
}

function proxyMetrics(registry: Registry): ProxyMetrics {
  return {
    upstreamDown: new Gauge({
      name: 'meshd_agent_xds_streams_without_meshd',
      help: 'Workload xDS streams the agent holds open while it cannot reach meshd (answered from the last configuration meshd sent).',
      registers: [registry],
    }),
    cachedAnswers: new Counter({
      name: 'meshd_agent_xds_cached_responses_total',
      help: 'xDS responses the agent sent from the last configuration meshd sent, while meshd was unreachable.',
      labelNames: ['type'],
      registers: [registry],
    }),
  };
}

export class XdsProxy {
  private server: Server | undefined;
  private readonly open = new Set<{ close(): void }>();
  private readonly lastConfig = new LastConfig();
  private readonly metrics: ProxyMetrics | undefined;

  constructor(private readonly opts: XdsProxyOptions) {
    this.metrics = opts.registry ? proxyMetrics(opts.registry) : undefined;
  }

  async start(): Promise<void> {
    const { socketPath } = this.opts;
    await mkdir(dirname(socketPath), { recursive: true, mode: 0o755 });
    const existing = await lstat(socketPath).catch(() => undefined);
    if (existing?.isSocket()) await unlink(socketPath); // a stale socket of a previous run
    else if (existing) throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
    const server = new Server();
    // Guarded like meshd's own services: an unexpected error ends that stream with INTERNAL, not the agent.
    const errors = new HandlerErrors({ logger: this.opts.logger.child({ component: 'xds-proxy' }) });
    addGuardedService(server, adsDefinition(), {
      [SOTW]: (call: ServerDuplexStream<Buffer, Buffer>) => this.relay(call),
      [DELTA]: (call: ServerDuplexStream<Buffer, Buffer>) => this.pipe(`${ADS}/${DELTA}`, call),
    }, errors);
    addGuardedService(server, alsDefinition(), {
      [ALS]: (call: ServerReadableStream<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => this.pipeAccessLogs(call, callback),
    }, errors);
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(),
      (err) => (err ? reject(new Error(`cannot listen on unix:${socketPath}: ${err.message}`)) : resolve())));
    await chmod(socketPath, 0o600);
    this.server = server;
    this.opts.logger.info({ socket: socketPath, meshd: this.opts.meshdAddress }, 'local xDS proxy listening');
  }

  async stop(): Promise<void> {
    for (const u of this.open) u.close();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await shutdownGrpcServer(server, AGENT_SHUTDOWN_GRACE_MS);
    await unlink(this.opts.socketPath).catch(() => undefined);
  }

  private relay(call: ServerDuplexStream<Buffer, Buffer>): void {
    const m = this.metrics;
    let down = false;
    const relay = new SotwRelay({
      target: { address: this.opts.meshdAddress, spiffeId: this.opts.meshdSpiffeId },
      method: `${ADS}/${SOTW}`,
      credential: this.opts.credential,
      trustedRoots: this.opts.trustedRoots,
      lastConfig: this.lastConfig,
      clock: this.opts.clock,
      random: this.opts.random ?? Math.random,
      backoff: this.opts.backoff ?? AGENT_BACKOFF,
      logger: this.opts.logger.child({ component: 'xds-proxy' }),
      onUpstream: (up) => {
        if (up === !down) return;
        down = !up;
        m?.upstreamDown.inc(up ? -1 : 1);
      },
      onCachedAnswer: (typeUrl) => m?.cachedAnswers.inc({ type: typeUrl.slice(typeUrl.lastIndexOf('.') + 1) }),
    }, call);
    const handle = { close: () => relay.close(false, 'meshd agent is shutting down') };
    this.open.add(handle);
    call.on('close', () => {
      this.open.delete(handle);
      if (down) m?.upstreamDown.dec();
      down = false;
    });
  }

  /** Opens the call to meshd with the agent's current credential; undefined (and the workload told why) when there is none. */
  private async upstream<T>(path: string, fail: (s: { code: status; details: string }) => void,
    open: (client: Client, metadata: Metadata) => T): Promise<T | undefined> {
    try {
      const [credential, roots] = await Promise.all([this.opts.credential(), this.opts.trustedRoots()]);
      const { client, metadata } = meshdChannel({ address: this.opts.meshdAddress, spiffeId: this.opts.meshdSpiffeId }, roots, credential);
      return open(client, metadata);
    } catch (e) {
      fail({ code: status.UNAVAILABLE, details: `the agent cannot open ${path} to meshd: ${errorMessage(e)}` });
      return undefined;
    }
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
    let closeClient = (): void => undefined;
    const up = await this.upstream(method, finish, (client, metadata) => {
      closeClient = () => client.close();
      return client.makeBidiStreamRequest(`/${method}`, bytes, bytes, metadata);
    });
    if (!up) return;
    const handle = { close: () => up.cancel() };
    this.open.add(handle);
    up.on('data', (b: Buffer) => { if (!finished && !down.cancelled) down.write(b); });
    up.on('status', (s: StatusObject) => {
      this.open.delete(handle);
      closeClient();
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

  /** Access logs: one call to meshd per workload call; meshd's answer (or refusal) is the workload's. */
  private async pipeAccessLogs(down: ServerReadableStream<Buffer, Buffer>, callback: sendUnaryData<Buffer>): Promise<void> {
    const path = `${ACCESS_LOG_SERVICE_NAME}/${ALS}`;
    let answered = false;
    const answer = (err: { code: status; details: string } | null, value?: Buffer): void => {
      if (answered) return;
      answered = true;
      if (err) callback(Object.assign(new Error(err.details), { code: err.code, details: err.details, metadata: undefined as never }));
      else callback(null, value ?? Buffer.alloc(0));
    };
    // Buffered until meshd's call is open: Envoy writes its identifier first and then entries.
    const early: Buffer[] = [];
    let ended = false;
    let up: ClientWritableStream<Buffer> | undefined;
    down.on('data', (b: Buffer) => { if (up) up.write(b); else early.push(b); });
    down.on('end', () => { ended = true; up?.end(); });
    down.on('error', () => undefined);
    let closeClient = (): void => undefined;
    const call = await this.upstream(path, (s) => answer(s), (client, metadata) => {
      closeClient = () => client.close();
      return client.makeClientStreamRequest(`/${path}`, bytes, bytes, metadata, (err, value) => {
        closeClient();
        answer(err ? { code: err.code, details: err.details } : null, value);
      });
    });
    if (!call) return;
    up = call;
    const handle = { close: () => call.cancel() };
    this.open.add(handle);
    call.on('status', () => this.open.delete(handle));
    const gone = (): void => { if (!answered) call.cancel(); };
    down.on('cancelled', gone);
    for (const b of early) call.write(b);
    early.length = 0;
    if (ended) call.end();
  }
}

