import type { Counter, Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import { systemClock, type Clock } from '../common/clock.js';
import type { Identity } from '../auth/identity.js';
import { parseLogName, type TrafficDirection } from './access-log-config.js';
import { AccessLogType, emptyFacts, readHttpEntry, readTcpEntry, WireError, type EntryFacts, type ScannedMessage } from './als-wire.js';
import { IstioMetrics } from './istio-metrics.js';
import {
  connectionSecurityPolicy, grpcResponseStatus, hostOfAuthority, isServiceHost, KEY_SEPARATOR as SEP,
  peerLabels, requestLabels, requestProtocol, serviceFromCluster, serviceLabels, tcpLabels,
  type LabelParts, type PeerLabels, type ServiceLabels,
} from './istio-labels.js';
import { formatResponseFlagMask } from './response-flags.js';
import { localWorkload, type LogIdentifier } from './log-identifier.js';
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
  /** Label combinations kept per istio_* counter family (default 10,000). */
  maxSeriesPerMetric?: number;
  /** Label combinations kept per istio_* histogram family (default 1,000). */
  maxHistogramSeriesPerMetric?: number;
  /** Bytes of access-log messages allowed to wait (default 32 MiB); beyond, messages are shed. */
  maxQueueBytes?: number;
  /** Longest slice of work before yielding to the event loop (default 10 ms). */
  tickBudgetMs?: number;
  /** *_cluster for workloads the registry knows but gives no cluster id (Istio's CLUSTER_ID). */
  defaultCluster?: string;
  /** How long resolved peer labels are reused before asking the resolver again (default 10 s). */
  resolverCacheTtlMs?: number;
  /** An istio_* series not updated for this long is dropped (default 10 minutes); 0 keeps series forever. */
  seriesIdleMs?: number;
  durationBuckets?: readonly number[];
  bytesBuckets?: readonly number[];
}

export type DropReason = 'overload' | 'malformed' | 'unknown_direction' | 'no_identifier' | 'error';

/** Per-stream state: who logs, from where, and TCP connections still open. */
export class AccessLogStream {
  readonly direction: TrafficDirection | undefined;
  readonly listenerLevel: boolean;
  /** Local side with its proven principal: the source of a reporter=source entry. */
  localAsSource!: PeerLabels;
  /** Local side by local certificate SAN ("" = no TLS): the destination of a reporter=destination entry. */
  private readonly localAsDestination = new Map<string, PeerLabels>();
  /** TCP connections (stream_id) already counted as opened, with the bytes counted so far. */
  readonly openTcp = new Map<string, { sent: number; received: number }>();
  /** Service labels by upstream cluster and authority, for this stream's direction and local service. */
  readonly services = new Map<string, Map<string, ServiceLabels>>();
  /** Entries in `services` (all levels), bounded by MAX_CACHED_SERVICES_PER_STREAM. */
  servicesSize = 0;
  servicesEpoch = 0;
  closed = false;

  constructor(
    readonly identifier: LogIdentifier,
    readonly identity: Identity,
    public local: WorkloadInfo,
    private readonly defaultCluster: string | undefined,
    private readonly intern: (labels: PeerLabels) => PeerLabels,
  ) {
    const parsed = parseLogName(identifier.logName);
    this.direction = parsed?.direction;
    this.listenerLevel = parsed?.listener ?? false;
    this.setLocal(local);
  }

  /** The local workload as the registry now describes it (labels may change with config). */
  setLocal(local: WorkloadInfo): void {
    this.local = local;
    this.localAsSource = this.intern(peerLabels(local, this.identity.spiffeId, this.defaultCluster));
    this.localAsDestination.clear();
  }

  localDestination(localSan: string): PeerLabels {
    let p = this.localAsDestination.get(localSan);
    if (p === undefined) {
      // Istio's destination_principal is the local certificate's SAN; without mTLS, unknown.
      p = this.intern(peerLabels(this.local, localSan, this.defaultCluster));
      if (this.localAsDestination.size < 16) this.localAsDestination.set(localSan, p);
    }
    return p;
  }
}

const MAX_OPEN_TCP_PER_STREAM = 10_000;
/**
 * Series keys are built per entry and hashed by the series maps, so they are kept short:
 * each distinct peer or service label set gets a permanent id ("#12") the first time it
 * is seen. The table never forgets (a key must always name the same labels); past its
 * size, new label sets use their full value string as their key part instead.
 */
const MAX_INTERNED = 100_000;
const MAX_CACHED_SERVICES_PER_STREAM = 4096;
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

  /** Resolved peers: ip → principal → labels. */
  private peerCache = new Map<string, Map<string, PeerLabels>>();
  private peerCacheSize = 0;
  private cacheEpoch: number;
  private cacheGeneration = 1;
  private readonly interned = new Map<string, string>();
  private readonly facts: EntryFacts = emptyFacts();
  private readonly parts: LabelParts & { made: Labels | undefined };
  private httpCount = 0;
  private tcpCount = 0;

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
    const unknown = this.internPeer(peerLabels(undefined, undefined));
    this.parts = { reporter: 'destination', src: unknown, dst: unknown, svc: serviceLabels(undefined, undefined), protocol: '', code: '', grpc: '', flags: '', policy: '', made: undefined };
    this.metrics = new IstioMetrics({
      registry: options.registry,
      maxSeriesPerMetric: options.maxSeriesPerMetric,
      maxHistogramSeriesPerMetric: options.maxHistogramSeriesPerMetric,
      durationBuckets: options.durationBuckets,
      bytesBuckets: options.bytesBuckets,
      seriesIdleMs: options.seriesIdleMs,
      clock: this.clock,
    });
    this.entriesTotal = counterOn(options.registry, {
      name: 'meshd_accesslog_entries_total',
      help: 'Access-log entries read from Envoy ALS streams, by entry type.',
      labelNames: ['type'],
    });
    this.entriesDropped = counterOn(options.registry, {
      name: 'meshd_accesslog_entries_dropped_total',
      help: 'Access-log entries not turned into metrics: overload (queue full, shed), malformed (undecodable), unknown_direction (log name and cluster name say neither inbound nor outbound), no_identifier (stream refused at its first message), error (an unexpected failure, logged).',
      labelNames: ['reason'],
    });
    for (const reason of ['overload', 'malformed', 'unknown_direction', 'no_identifier', 'error']) this.entriesDropped.inc({ reason }, 0);
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
    this.peerCacheSize = 0;
    this.cacheGeneration++;
    this.cacheEpoch = this.clock.now();
  }

  /** A stream's context from its first message. Throws IdentifierError for a node that is not the identity's. */
  openStream(identifier: LogIdentifier, identity: Identity): AccessLogStream {
    const local = localWorkload(identifier, identity, this.resolver, this.defaultCluster);
    const stream = new AccessLogStream(identifier, identity, local, this.defaultCluster, (p) => this.internPeer(p));
    stream.servicesEpoch = this.cacheGeneration;
    return stream;
  }

  private internRef(key: string): string {
    let ref = this.interned.get(key);
    if (ref === undefined) {
      if (this.interned.size >= MAX_INTERNED) return `!${key}`;
      ref = `#${this.interned.size}`;
      this.interned.set(key, ref);
    }
    return ref;
  }

  private internPeer(p: PeerLabels): PeerLabels {
    p.ref = this.internRef(`p${SEP}${p.key}`);
    return p;
  }

  private internService(s: ServiceLabels): ServiceLabels {
    s.ref = this.internRef(`s${SEP}${s.key}`);
    return s;
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
    for (const e of message.http) this.entry(stream, 'http', e);
    for (const e of message.tcp) this.entry(stream, 'tcp', e);
    this.flushCounts();
  }

  /** Entry counts are kept as plain numbers on the hot path and handed to prom-client per slice. */
  private flushCounts(): void {
    if (this.httpCount > 0) this.entriesTotal.inc({ type: 'http' }, this.httpCount);
    if (this.tcpCount > 0) this.entriesTotal.inc({ type: 'tcp' }, this.tcpCount);
    this.httpCount = 0;
    this.tcpCount = 0;
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
        this.entry(item.stream, item.kind, item.entries[item.next++]!);
        this.queuedBytes -= perEntry;
        if (++sinceCheck === 32) {
          sinceCheck = 0;
          if (performance.now() >= deadline) {
            this.flushCounts();
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
    this.flushCounts();
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
    if (now - this.cacheEpoch >= this.cacheTtlMs || this.peerCacheSize > 50_000) this.invalidate();
  }

  /** A remote workload by address (and principal when it presented one). */
  private peer(ip: string, principal: string): PeerLabels {
    let byPrincipal = this.peerCache.get(ip);
    if (byPrincipal === undefined) {
      byPrincipal = new Map();
      this.peerCache.set(ip, byPrincipal);
    }
    let p = byPrincipal.get(principal);
    if (p === undefined) {
      let info = ip !== '' ? this.resolver.byAddress(ip) : undefined;
      if (info === undefined && principal !== '' && this.resolver.byPrincipal) info = this.resolver.byPrincipal(principal);
      // A client-side report has no peer certificate: the registry's principal is the best answer.
      p = this.internPeer(peerLabels(info, principal !== '' ? principal : info?.principal, this.defaultCluster));
      byPrincipal.set(principal, p);
      this.peerCacheSize++;
    }
    return p;
  }

  /**
   * destination_service for an entry, cached per stream by (cluster, authority):
   * Istio's cluster name carries the host; inbound clusters may not, then a mesh host in
   * :authority, the local workload's service, or the authority as it is.
   */
  private service(stream: AccessLogStream, direction: TrafficDirection, dst: PeerLabels, cluster: string, authority: string): ServiceLabels {
    if (stream.servicesSize >= MAX_CACHED_SERVICES_PER_STREAM) {
      stream.services.clear();
      stream.servicesSize = 0;
    }
    let byAuthority = stream.services.get(cluster);
    if (byAuthority === undefined) {
      byAuthority = new Map();
      stream.services.set(cluster, byAuthority);
    }
    // Outbound falls back to the destination workload's service: part of the cache key.
    const cacheKey = direction === 'inbound' ? authority : authority + SEP + dst.ref;
    let s = byAuthority.get(cacheKey);
    if (s === undefined) {
      const authorityHost = authority !== '' ? hostOfAuthority(authority) : undefined;
      // Hosts resolve as the logging proxy's namespace sees them, as its xDS config did.
      const resolver = this.resolver;
      const lookup = resolver.serviceByHost === undefined ? undefined : (h: string) => resolver.serviceByHost!(h, stream.local.namespace);
      let host: string | undefined;
      if (direction === 'inbound') {
        host = serviceFromCluster(cluster)
          ?? (authorityHost !== undefined && (isServiceHost(authorityHost) || lookup?.(authorityHost)) ? authorityHost : undefined)
          ?? stream.local.service
          ?? authorityHost;
      } else {
        host = serviceFromCluster(cluster) ?? authorityHost ?? dst.service;
      }
      s = this.internService(serviceLabels(host, lookup));
      byAuthority.set(cacheKey, s);
      stream.servicesSize++;
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

  /** Fills parts.src, .dst and .svc for an entry, by the side that logged it. */
  private sides(stream: AccessLogStream, direction: TrafficDirection, f: EntryFacts, http: boolean): void {
    if (stream.servicesEpoch !== this.cacheGeneration) {
      // Resolver caches were refreshed (TTL or config change): so is this stream's local side.
      stream.setLocal(localWorkload(stream.identifier, stream.identity, this.resolver, this.defaultCluster));
      stream.services.clear();
      stream.servicesSize = 0;
      stream.servicesEpoch = this.cacheGeneration;
    }
    const parts = this.parts;
    const authority = http ? f.authority : '';
    if (direction === 'inbound') {
      parts.reporter = 'destination';
      parts.dst = stream.localDestination(f.localUriSan);
      parts.src = this.peer(f.downstreamRemoteIp, f.peerUriSan);
    } else {
      parts.reporter = 'source';
      parts.src = stream.localAsSource;
      parts.dst = this.peer(f.upstreamRemoteIp, '');
    }
    parts.svc = this.service(stream, direction, parts.dst, f.upstreamCluster, authority);
    parts.flags = formatResponseFlagMask(f.responseFlags);
    parts.policy = connectionSecurityPolicy(parts.reporter, f.peerUriSan, f.localUriSan);
    parts.made = undefined;
  }

  /** The series key: short refs of the label parts (see MAX_INTERNED). */
  private requestKey(): string {
    const p = this.parts;
    return p.reporter + SEP + p.src.ref + SEP + p.dst.ref + SEP + p.svc.ref + SEP + p.protocol + SEP + p.code + SEP + p.grpc + SEP + p.flags + SEP + p.policy;
  }

  private tcpKey(): string {
    const p = this.parts;
    return p.reporter + SEP + p.src.ref + SEP + p.dst.ref + SEP + p.svc.ref + SEP + p.flags + SEP + p.policy;
  }

  /** One entry; whatever goes wrong with it stays with it (counted, logged), the rest go on. */
  private entry(stream: AccessLogStream, kind: 'http' | 'tcp', bytes: Uint8Array): void {
    try {
      if (kind === 'http') this.httpEntry(stream, bytes);
      else this.tcpEntry(stream, bytes);
    } catch (err) {
      this.failed(stream, err);
    }
  }

  private httpEntry(stream: AccessLogStream, bytes: Uint8Array): void {
    const f = this.facts;
    readHttpEntry(bytes, f);
    this.httpCount++;
    // Periodic and start-of-stream entries are not requests; only the final one counts.
    if (f.accessLogType !== AccessLogType.NotSet && f.accessLogType !== AccessLogType.DownstreamEnd) return;
    const direction = this.requestDirection(stream, f);
    if (direction === undefined) return;
    this.sides(stream, direction, f, true);
    const parts = this.parts;
    parts.protocol = requestProtocol(f.contentType, f.grpcStatus);
    parts.code = f.responseCode < 600 ? CODE_STRINGS[f.responseCode]! : String(f.responseCode);
    parts.grpc = grpcResponseStatus(parts.protocol as 'grpc' | 'http', f.grpcStatus, f.responseCode);
    const requestBytes = f.downstreamWireBytesReceived > 0 ? f.downstreamWireBytesReceived : f.requestHeadersBytes + f.requestBodyBytes;
    const responseBytes = f.downstreamWireBytesSent > 0 ? f.downstreamWireBytesSent : f.responseHeadersBytes + f.responseBodyBytes;
    this.metrics.recordRequest(this.requestKey(), makeRequestLabels, parts, f.durationMs > 0 ? f.durationMs : 0, requestBytes, responseBytes);
  }

  private tcpEntry(stream: AccessLogStream, bytes: Uint8Array): void {
    const f = this.facts;
    readTcpEntry(bytes, f);
    this.tcpCount++;
    const type = f.accessLogType;
    if (type !== AccessLogType.NotSet && type !== AccessLogType.TcpUpstreamConnected
      && type !== AccessLogType.TcpPeriodic && type !== AccessLogType.TcpConnectionEnd) return;
    const direction = this.requestDirection(stream, f);
    if (direction === undefined) return;
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
    this.sides(stream, direction, f, false);
    this.metrics.recordTcp(this.tcpKey(), makeTcpLabels, this.parts, opened, closed, sentDelta, receivedDelta);
  }

  /**
   * The direction of an HTTP or TCP entry that counts as traffic; undefined when it was
   * dropped (no direction known) or already recorded as a listener-level refusal.
   */
  private requestDirection(stream: AccessLogStream, f: EntryFacts): TrafficDirection | undefined {
    const direction = this.direction(stream, f.upstreamCluster);
    if (direction === undefined) {
      this.countDropped('unknown_direction', 1);
      return undefined;
    }
    if (stream.listenerLevel) {
      this.refused(stream, direction, f);
      return undefined;
    }
    return direction;
  }

  /**
   * A connection refused at the listener (no filter chain matched: NR, e.g. plaintext
   * into STRICT). No protocol filter ran, so it has no response code: it counts as one
   * request with request_protocol "tcp" and response_code "0" (so
   * istio_requests_total{response_flags="NR"} shows it) and as one TCP connection
   * opened and closed. Istio's own proxy only access-logs these.
   */
  private refused(stream: AccessLogStream, direction: TrafficDirection, f: EntryFacts): void {
    this.sides(stream, direction, f, false);
    const parts = this.parts;
    parts.protocol = 'tcp';
    parts.code = '0';
    parts.grpc = '';
    this.metrics.recordRefusedRequest(this.requestKey(), makeRequestLabels, parts);
    parts.made = undefined;
    const sent = f.sentBytes > 0 ? f.sentBytes : f.downstreamWireBytesSent;
    const received = f.receivedBytes > 0 ? f.receivedBytes : f.downstreamWireBytesReceived;
    this.metrics.recordTcp(this.tcpKey(), makeTcpLabels, parts, 1, 1, sent, received);
  }

  private failuresLogged = 0;

  /** A malformed entry (WireError), or an unexpected failure (e.g. a throwing resolver). */
  private failed(stream: AccessLogStream, err: unknown): void {
    const malformed = err instanceof WireError;
    this.countDropped(malformed ? 'malformed' : 'error', 1);
    // Rate-limited: a hostile stream can send millions.
    if (this.failuresLogged++ % 10_000 === 0) {
      const fields = { node: stream.identifier.nodeId, spiffeId: stream.identity.spiffeId, err: err instanceof Error ? err.message : String(err) };
      if (malformed) this.logger.warn(fields, 'malformed access-log entry skipped');
      else this.logger.error(fields, 'access-log entry failed');
    }
  }
}

/** Label objects are built once per new series, shared by the families of one entry. */
function makeRequestLabels(p: LabelParts & { made: Labels | undefined }): Labels {
  return (p.made ??= requestLabels(p));
}

function makeTcpLabels(p: LabelParts & { made: Labels | undefined }): Labels {
  return (p.made ??= tcpLabels(p));
}
