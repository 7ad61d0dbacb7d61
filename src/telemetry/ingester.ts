import type { Counter, Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import { systemClock, type Clock } from '../common/clock.js';
import type { Identity } from '../auth/identity.js';
import { parseLogName, type TrafficDirection } from './access-log-config.js';
import { AccessLogType, emptyFacts, readHttpEntry, readTcpEntry, WireError, type EntryFacts, type ScannedMessage } from './als-wire.js';
import { IstioMetrics } from './istio-metrics.js';
import {
  connectionSecurityPolicy, grpcResponseStatus, hostOfAuthority, isServiceHost, KEY_SEPARATOR as SEP,
  peerLabels, requestProtocol, serviceFromCluster, serviceLabels, type PeerLabels, type ServiceLabels,
} from './istio-labels.js';
import { formatResponseFlagMask } from './response-flags.js';
import { localWorkload, type LogIdentifier } from './node-identity.js';
import { UNKNOWN_RESOLVER, type WorkloadInfo, type WorkloadResolver } from './workload-resolver.js';
import { counterOn, gaugeOn } from './registry-metrics.js';
import type { Labels } from './series-family.js';

/**
 * Access-log entries → istio_* series.
 *
 * The ALS stream is lossy by design (Envoy does not wait for an answer), so meshd keeps
 * up or sheds: messages wait in one bounded queue (bytes), a worker drains it in slices
 * of at most `tickBudgetMs` and yields to the event loop between slices, so xDS and
 * SDS keep being served during a flood. When the queue is full, new messages are
 * dropped whole and their entries counted in
 * meshd_accesslog_entries_dropped_total{reason="overload"}.
 */

export interface AccessLogIngesterOptions {
  registry: Registry;
  logger: Logger;
  resolver?: WorkloadResolver;
  clock?: Clock;
  /** Label combinations kept per istio_* family (default 10,000). */
  maxSeriesPerMetric?: number;
  /** Bytes of access-log messages allowed to wait (default 32 MiB); beyond, messages are shed. */
  maxQueueBytes?: number;
  /** Longest slice of work before yielding to the event loop (default 10 ms). */
  tickBudgetMs?: number;
  /** *_cluster for workloads the registry knows but gives no cluster id (Istio's CLUSTER_ID). */
  defaultCluster?: string;
  /** How long resolved peer labels are reused before asking the resolver again (default 10 s). */
  resolverCacheTtlMs?: number;
  durationBuckets?: readonly number[];
  bytesBuckets?: readonly number[];
}

export type DropReason = 'overload' | 'malformed' | 'unknown_direction' | 'no_identifier';

/** Per-stream state: who logs, from where, and TCP connections still open. */
export class AccessLogStream {
  readonly direction: TrafficDirection | undefined;
  readonly listenerLevel: boolean;
  /** Local side with its proven principal: the source of a reporter=source entry. */
  readonly localAsSource: PeerLabels;
  /** Local side by local certificate SAN ("" = no TLS): the destination of a reporter=destination entry. */
  private readonly localAsDestination = new Map<string, PeerLabels>();
  /** TCP connections (stream_id) already counted as opened, with the bytes counted so far. */
  readonly openTcp = new Map<string, { sent: number; received: number }>();
  closed = false;

  constructor(
    readonly identifier: LogIdentifier,
    readonly identity: Identity,
    readonly local: WorkloadInfo,
    private readonly defaultCluster: string | undefined,
  ) {
    const parsed = parseLogName(identifier.logName);
    this.direction = parsed?.direction;
    this.listenerLevel = parsed?.listener ?? false;
    this.localAsSource = peerLabels(local, identity.spiffeId, defaultCluster);
  }

  localDestination(localSan: string): PeerLabels {
    let p = this.localAsDestination.get(localSan);
    if (p === undefined) {
      // Istio's destination_principal is the local certificate's SAN; without mTLS, unknown.
      p = peerLabels(this.local, localSan, this.defaultCluster);
      if (this.localAsDestination.size < 16) this.localAsDestination.set(localSan, p);
    }
    return p;
  }
}

const MAX_OPEN_TCP_PER_STREAM = 10_000;
const CODE_STRINGS: string[] = Array.from({ length: 600 }, (_, i) => String(i));

interface QueueItem {
  stream: AccessLogStream;
  kind: 'http' | 'tcp';
  entries: Uint8Array[];
  next: number;
  bytes: number;
}

export class AccessLogIngester {
  readonly metrics: IstioMetrics;
  private readonly logger: Logger;
  private resolver: WorkloadResolver;
  private readonly clock: Clock;
  private readonly defaultCluster: string | undefined;
  private readonly maxQueueBytes: number;
  private readonly tickBudgetMs: number;
  private readonly cacheTtlMs: number;

  private readonly queue: QueueItem[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private scheduled = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  private peerCache = new Map<string, PeerLabels>();
  private serviceCache = new Map<string, ServiceLabels>();
  private cacheEpoch: number;
  private readonly facts: EntryFacts = emptyFacts();

  private readonly entriesTotal: Counter<'type'>;
  private readonly entriesDropped: Counter<'reason'>;

  constructor(options: AccessLogIngesterOptions) {
    this.logger = options.logger;
    this.resolver = options.resolver ?? UNKNOWN_RESOLVER;
    this.clock = options.clock ?? systemClock;
    this.defaultCluster = options.defaultCluster;
    this.maxQueueBytes = options.maxQueueBytes ?? 32 * 1024 * 1024;
    this.tickBudgetMs = options.tickBudgetMs ?? 10;
    this.cacheTtlMs = options.resolverCacheTtlMs ?? 10_000;
    this.cacheEpoch = this.clock.now();
    this.metrics = new IstioMetrics({
      registry: options.registry,
      maxSeriesPerMetric: options.maxSeriesPerMetric,
      durationBuckets: options.durationBuckets,
      bytesBuckets: options.bytesBuckets,
    });
    this.entriesTotal = counterOn(options.registry, {
      name: 'meshd_accesslog_entries_total',
      help: 'Access-log entries read from Envoy ALS streams, by entry type.',
      labelNames: ['type'],
    });
    this.entriesDropped = counterOn(options.registry, {
      name: 'meshd_accesslog_entries_dropped_total',
      help: 'Access-log entries not turned into metrics: overload (queue full, shed), malformed (undecodable), unknown_direction (log name and cluster name say neither inbound nor outbound), no_identifier (stream refused at its first message).',
      labelNames: ['reason'],
    });
    for (const reason of ['overload', 'malformed', 'unknown_direction', 'no_identifier']) this.entriesDropped.inc({ reason }, 0);
    const queue = this;
    gaugeOn(options.registry, {
      name: 'meshd_accesslog_queue_bytes',
      help: 'Bytes of access-log messages waiting to be turned into metrics.',
      collect() {
        this.set(queue.queuedBytes);
      },
    });
  }

  /** Swaps the registry view (config change) and forgets cached peers. */
  setResolver(resolver: WorkloadResolver): void {
    this.resolver = resolver;
    this.invalidate();
  }

  /** Forgets resolved peers, e.g. after a registry change. */
  invalidate(): void {
    this.peerCache = new Map();
    this.serviceCache = new Map();
    this.cacheEpoch = this.clock.now();
  }

  /** A stream's context from its first message. Throws IdentifierError for a node that is not the identity's. */
  openStream(identifier: LogIdentifier, identity: Identity): AccessLogStream {
    const local = localWorkload(identifier, identity, this.resolver, this.defaultCluster);
    return new AccessLogStream(identifier, identity, local, this.defaultCluster);
  }

  countDropped(reason: DropReason, entries: number): void {
    if (entries > 0) this.entriesDropped.inc({ reason }, entries);
  }

  /**
   * Queues a message's entries for the worker; false (and counted as overload) when the
   * queue is full. Never blocks.
   */
  enqueue(stream: AccessLogStream, message: ScannedMessage, bytes: number): boolean {
    const entries = message.http.length + message.tcp.length;
    if (entries === 0) return true;
    if (this.stopped || this.queuedBytes + bytes > this.maxQueueBytes) {
      this.countDropped('overload', entries);
      return false;
    }
    const share = bytes / entries;
    if (message.http.length > 0) this.push({ stream, kind: 'http', entries: message.http, next: 0, bytes: share * message.http.length });
    if (message.tcp.length > 0) this.push({ stream, kind: 'tcp', entries: message.tcp, next: 0, bytes: share * message.tcp.length });
    this.schedule();
    return true;
  }

  /** Processes a message now, on the caller's tick (benchmarks, tools). */
  ingest(stream: AccessLogStream, message: ScannedMessage): void {
    this.refreshCaches();
    for (const e of message.http) this.httpEntry(stream, e);
    for (const e of message.tcp) this.tcpEntry(stream, e);
  }

  /** Resolves once the queue is empty (tests; graceful shutdown). */
  idle(): Promise<void> {
    if (this.queuedBytes === 0 && this.queueHead >= this.queue.length) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops the worker; queued entries are dropped (counted as overload). */
  stop(): void {
    this.stopped = true;
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const item = this.queue[i]!;
      this.countDropped('overload', item.entries.length - item.next);
    }
    this.queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
    this.wakeIdle();
  }

  private push(item: QueueItem): void {
    this.queue.push(item);
    this.queuedBytes += item.bytes;
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => this.work());
  }

  /** One slice: entries until the budget is spent, then yield (setImmediate lets I/O run first). */
  private work(): void {
    this.scheduled = false;
    if (this.stopped) return;
    this.refreshCaches();
    const deadline = performance.now() + this.tickBudgetMs;
    let sinceCheck = 0;
    while (this.queueHead < this.queue.length) {
      const item = this.queue[this.queueHead]!;
      const perEntry = item.bytes / item.entries.length;
      while (item.next < item.entries.length) {
        const bytes = item.entries[item.next++]!;
        if (item.kind === 'http') this.httpEntry(item.stream, bytes);
        else this.tcpEntry(item.stream, bytes);
        this.queuedBytes -= perEntry;
        if (++sinceCheck === 32) {
          sinceCheck = 0;
          if (performance.now() >= deadline) {
            this.compact();
            this.schedule();
            return;
          }
        }
      }
      this.queue[this.queueHead++] = undefined as unknown as QueueItem;
    }
    this.queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
    this.wakeIdle();
  }

  private compact(): void {
    if (this.queueHead > 1024) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private refreshCaches(): void {
    const now = this.clock.now();
    if (now - this.cacheEpoch >= this.cacheTtlMs || this.peerCache.size > 50_000 || this.serviceCache.size > 50_000) this.invalidate();
  }

  /** A remote workload by address (and principal when it presented one). */
  private peer(ip: string, principal: string): PeerLabels {
    const cacheKey = ip + SEP + principal;
    let p = this.peerCache.get(cacheKey);
    if (p === undefined) {
      let info = ip !== '' ? this.resolver.byAddress(ip) : undefined;
      if (info === undefined && principal !== '' && this.resolver.byPrincipal) info = this.resolver.byPrincipal(principal);
      // A client-side report has no peer certificate: the registry's principal is the best answer.
      p = peerLabels(info, principal !== '' ? principal : info?.principal, this.defaultCluster);
      this.peerCache.set(cacheKey, p);
    }
    return p;
  }

  private service(host: string | undefined): ServiceLabels {
    const key = host ?? '';
    let s = this.serviceCache.get(key);
    if (s === undefined) {
      s = serviceLabels(host, this.resolver.serviceByHost?.bind(this.resolver));
      this.serviceCache.set(key, s);
    }
    return s;
  }

  /** Which side logged: the log name, else Istio's cluster naming (inbound|… / outbound|…). */
  private direction(stream: AccessLogStream, cluster: string): TrafficDirection | undefined {
    if (stream.direction !== undefined) return stream.direction;
    if (cluster.startsWith('inbound|') || cluster.startsWith('InboundPassthroughCluster')) return 'inbound';
    if (cluster.startsWith('outbound|') || cluster === 'PassthroughCluster' || cluster === 'BlackHoleCluster') return 'outbound';
    return undefined;
  }

  /** Source, destination and service labels for an entry, by the side that logged it. */
  private sides(stream: AccessLogStream, direction: TrafficDirection, f: EntryFacts, http: boolean): [PeerLabels, PeerLabels, ServiceLabels] {
    const authorityHost = http && f.authority !== '' ? hostOfAuthority(f.authority) : undefined;
    if (direction === 'inbound') {
      const dst = stream.localDestination(f.localUriSan);
      const src = this.peer(f.downstreamRemoteIp, f.peerUriSan);
      const host = serviceFromCluster(f.upstreamCluster)
        ?? (authorityHost !== undefined && (isServiceHost(authorityHost) || this.resolver.serviceByHost?.(authorityHost)) ? authorityHost : undefined)
        ?? stream.local.service
        ?? authorityHost;
      return [src, dst, this.service(host)];
    }
    const dst = this.peer(f.upstreamRemoteIp, '');
    const host = serviceFromCluster(f.upstreamCluster) ?? authorityHost ?? dst.service;
    return [stream.localAsSource, dst, this.service(host)];
  }

  private httpEntry(stream: AccessLogStream, bytes: Uint8Array): void {
    const f = this.facts;
    try {
      readHttpEntry(bytes, f);
    } catch (err) {
      this.malformed(stream, err);
      return;
    }
    this.entriesTotal.inc({ type: 'http' });
    // Periodic and start-of-stream entries are not requests; only the final one counts.
    if (f.accessLogType !== AccessLogType.NotSet && f.accessLogType !== AccessLogType.DownstreamEnd) return;
    const direction = this.direction(stream, f.upstreamCluster);
    if (direction === undefined) {
      this.countDropped('unknown_direction', 1);
      return;
    }
    if (stream.listenerLevel) {
      this.refused(stream, direction, f);
      return;
    }
    const reporter = direction === 'inbound' ? 'destination' : 'source';
    const [src, dst, svc] = this.sides(stream, direction, f, true);
    const protocol = requestProtocol(f.contentType, f.grpcStatus);
    const code = f.responseCode < 600 ? CODE_STRINGS[f.responseCode]! : String(f.responseCode);
    const grpc = grpcResponseStatus(protocol, f.grpcStatus, f.responseCode);
    const flags = formatResponseFlagMask(f.responseFlags);
    const policy = connectionSecurityPolicy(reporter, f.peerUriSan, f.localUriSan);
    const key = reporter + SEP + src.key + SEP + dst.key + SEP + svc.key + SEP + protocol + SEP + code + SEP + grpc + SEP + flags + SEP + policy;
    const requestBytes = f.downstreamWireBytesReceived > 0 ? f.downstreamWireBytesReceived : f.requestHeadersBytes + f.requestBodyBytes;
    const responseBytes = f.downstreamWireBytesSent > 0 ? f.downstreamWireBytesSent : f.responseHeadersBytes + f.responseBodyBytes;
    this.metrics.recordRequest(
      key,
      () => requestLabels(reporter, src, dst, svc, protocol, code, grpc, flags, policy),
      f.durationMs > 0 ? f.durationMs : 0,
      requestBytes,
      responseBytes,
    );
  }

  private tcpEntry(stream: AccessLogStream, bytes: Uint8Array): void {
    const f = this.facts;
    try {
      readTcpEntry(bytes, f);
    } catch (err) {
      this.malformed(stream, err);
      return;
    }
    this.entriesTotal.inc({ type: 'tcp' });
    const type = f.accessLogType;
    if (type !== AccessLogType.NotSet && type !== AccessLogType.TcpUpstreamConnected
      && type !== AccessLogType.TcpPeriodic && type !== AccessLogType.TcpConnectionEnd) return;
    const direction = this.direction(stream, f.upstreamCluster);
    if (direction === undefined) {
      this.countDropped('unknown_direction', 1);
      return;
    }
    if (stream.listenerLevel) {
      this.refused(stream, direction, f);
      return;
    }
    const sent = f.sentBytes > 0 ? f.sentBytes : f.downstreamWireBytesSent;
    const received = f.receivedBytes > 0 ? f.receivedBytes : f.downstreamWireBytesReceived;
    let opened = 0;
    let closed = 0;
    let sentDelta = sent;
    let receivedDelta = received;
    // Envoy's byte counts are cumulative per connection; with periodic or on-connect
    // entries (tcp_proxy access_log_options) count each byte and each open once.
    const id = f.streamId;
    const known = id !== '' ? stream.openTcp.get(id) : undefined;
    if (known) {
      sentDelta = Math.max(0, sent - known.sent);
      receivedDelta = Math.max(0, received - known.received);
    } else {
      opened = 1;
    }
    if (type === AccessLogType.TcpConnectionEnd || type === AccessLogType.NotSet) {
      closed = 1;
      if (known) stream.openTcp.delete(id);
    } else if (id !== '') {
      if (known) {
        known.sent = Math.max(known.sent, sent);
        known.received = Math.max(known.received, received);
      } else {
        if (stream.openTcp.size >= MAX_OPEN_TCP_PER_STREAM) stream.openTcp.delete(stream.openTcp.keys().next().value!);
        stream.openTcp.set(id, { sent, received });
      }
    }
    const reporter = direction === 'inbound' ? 'destination' : 'source';
    const [src, dst, svc] = this.sides(stream, direction, f, false);
    const flags = formatResponseFlagMask(f.responseFlags);
    const policy = connectionSecurityPolicy(reporter, f.peerUriSan, f.localUriSan);
    const key = reporter + SEP + src.key + SEP + dst.key + SEP + svc.key + SEP + flags + SEP + policy;
    this.metrics.recordTcp(key, () => tcpLabels(reporter, src, dst, svc, flags, policy), opened, closed, sentDelta, receivedDelta);
  }

  /**
   * A connection refused at the listener (no filter chain matched: NR, e.g. plaintext
   * into STRICT). No protocol filter ran, so it has no response code: it counts as one
   * request with request_protocol "tcp" and response_code "0" (so
   * istio_requests_total{response_flags="NR"} shows it) and as one TCP connection
   * opened and closed. Istio's own proxy only access-logs these.
   */
  private refused(stream: AccessLogStream, direction: TrafficDirection, f: EntryFacts): void {
    const reporter = direction === 'inbound' ? 'destination' : 'source';
    const [src, dst, svc] = this.sides(stream, direction, f, false);
    const flags = formatResponseFlagMask(f.responseFlags);
    const policy = connectionSecurityPolicy(reporter, f.peerUriSan, f.localUriSan);
    const key = reporter + SEP + src.key + SEP + dst.key + SEP + svc.key + SEP + 'tcp' + SEP + '0' + SEP + '' + SEP + flags + SEP + policy;
    this.metrics.recordRefusedRequest(key, () => requestLabels(reporter, src, dst, svc, 'tcp', '0', '', flags, policy));
    const tcpKey = reporter + SEP + src.key + SEP + dst.key + SEP + svc.key + SEP + flags + SEP + policy;
    const sent = f.sentBytes > 0 ? f.sentBytes : f.downstreamWireBytesSent;
    const received = f.receivedBytes > 0 ? f.receivedBytes : f.downstreamWireBytesReceived;
    this.metrics.recordTcp(tcpKey, () => tcpLabels(reporter, src, dst, svc, flags, policy), 1, 1, sent, received);
  }

  private malformedLogged = 0;

  private malformed(stream: AccessLogStream, err: unknown): void {
    this.countDropped('malformed', 1);
    if (!(err instanceof WireError)) throw err;
    // Rate-limit the log line: a hostile stream can send millions.
    if (this.malformedLogged++ % 10_000 === 0) {
      this.logger.warn({ node: stream.identifier.nodeId, spiffeId: stream.identity.spiffeId, err: err.message }, 'malformed access-log entry skipped');
    }
  }
}

function requestLabels(reporter: string, src: PeerLabels, dst: PeerLabels, svc: ServiceLabels, protocol: string, code: string, grpc: string, flags: string, policy: string): Labels {
  return {
    reporter,
    source_workload: src.workload,
    source_canonical_service: src.canonicalService,
    source_canonical_revision: src.canonicalRevision,
    source_workload_namespace: src.namespace,
    source_principal: src.principal,
    source_app: src.app,
    source_version: src.version,
    source_cluster: src.cluster,
    destination_workload: dst.workload,
    destination_workload_namespace: dst.namespace,
    destination_principal: dst.principal,
    destination_app: dst.app,
    destination_version: dst.version,
    destination_service: svc.service,
    destination_canonical_service: dst.canonicalService,
    destination_canonical_revision: dst.canonicalRevision,
    destination_service_name: svc.name,
    destination_service_namespace: svc.namespace,
    destination_cluster: dst.cluster,
    request_protocol: protocol,
    response_code: code,
    grpc_response_status: grpc,
    response_flags: flags,
    connection_security_policy: policy,
  };
}

function tcpLabels(reporter: string, src: PeerLabels, dst: PeerLabels, svc: ServiceLabels, flags: string, policy: string): Labels {
  const { response_code: _c, grpc_response_status: _g, ...rest } = requestLabels(reporter, src, dst, svc, 'tcp', '', '', flags, policy);
  return rest;
}
