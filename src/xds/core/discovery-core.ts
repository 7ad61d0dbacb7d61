import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { Logger } from '../../common/logger.js';
import { systemClock, type Clock } from '../../common/clock.js';
import { shortTypeName } from '../../envoy/resource-types.js';
import { GeneratorError, type Generator, type ProxyInfo, type PushRequest } from './types.js';
import { checkRequest, DEFAULT_MAX_RESOURCE_NAMES, type SotwRequest, type XdsRequest } from './requests.js';
import { applySotwNames, covers, EMPTY_SUBSCRIPTION } from './subscription.js';
import { uniqueByName, viewVersion } from './resource.js';
import { encodeSotwResponse } from './wire.js';
import { CoreMetrics } from './metrics.js';
import { PushQueue } from './push-queue.js';
import { Connection, type ConnectionContext, type CoreStream, type OpenStreamOptions } from './connection.js';
import type { ConnectionStatus } from './connection-status.js';
import { clip } from './limits.js';
import { HandlerErrors } from '../../common/handler-errors.js';

export interface DiscoveryCoreOptions {
  logger: Logger;
  /** prom-client registry the pilot_* metrics are registered in. */
  registry: Registry;
  clock?: Clock;
  generators?: readonly Generator[];
  /** Connections generating a push at the same time (default 64). */
  pushConcurrency?: number;
  /** Names per request, and subscribed names per stream and type (default 10,000). */
  maxResourceNames?: number;
  /** The `version` label of pilot_xds (default "meshd"). */
  version?: string;
  /** DiscoveryResponse.control_plane.identifier, shown in Envoy's config dump. */
  controlPlaneId?: string;
  /** Randomness for stream tags (nonces must not collide with another replica's). */
  randomBytes?: (size: number) => Buffer;
  /** Where unexpected errors on streams are counted and logged (default: logged only). */
  errors?: HandlerErrors;
}

/**
 * The one xDS protocol core: every stream (ADS or per-type, SotW or delta, secrets or
 * listeners) goes through it, and every protocol rule is implemented once, in
 * subscription.ts, sotw-state.ts and delta-state.ts. Generators are registered by type
 * URL and never see a stream; the core never knows what a listener or a secret means.
 */
export class DiscoveryCore {
  readonly metrics: CoreMetrics;
  private readonly generators = new Map<string, Generator>();
  private readonly served = new Set<string>();
  private readonly streams = new Map<string, Connection>();
  private readonly queue: PushQueue<Connection>;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly maxResourceNames: number;
  private readonly controlPlaneId: string | undefined;
  private readonly tag: string;
  private readonly connectionContext: ConnectionContext;
  private sequence = 0;
  private closed = false;

  constructor(options: DiscoveryCoreOptions) {
    this.logger = options.logger.child({ component: 'xds-core' });
    this.clock = options.clock ?? systemClock;
    this.maxResourceNames = options.maxResourceNames ?? DEFAULT_MAX_RESOURCE_NAMES;
    this.controlPlaneId = options.controlPlaneId;
    this.tag = (options.randomBytes ?? randomBytes)(4).toString('hex');
    this.metrics = new CoreMetrics(options.registry, options.version ?? 'meshd');
    this.queue = new PushQueue<Connection>(options.pushConcurrency ?? 64, (connection, job) => connection.push(job));
    for (const generator of options.generators ?? []) this.register(generator);
    // One context shared by every connection, not closures made per stream.
    this.connectionContext = {
      generator: (typeUrl) => this.generators.get(typeUrl),
      served: () => this.served,
      maxResourceNames: this.maxResourceNames,
      metrics: this.metrics,
      logger: this.logger,
      errors: options.errors ?? new HandlerErrors({ logger: this.logger, clock: this.clock }),
      clock: this.clock,
      controlPlane: this.controlPlaneId,
      onEnd: (c) => this.forget(c),
      requeue: (c, job) => {
        if (this.closed || !this.streams.has(c.id)) return;
        this.queue.enqueueJob(c, job);
      },
    };
  }

  /** Plugs in the generator for one type URL (one per type). */
  register(generator: Generator): void {
    if (this.generators.has(generator.typeUrl)) throw new Error(`a generator for ${generator.typeUrl} is already registered`);
    this.generators.set(generator.typeUrl, generator);
    this.served.add(generator.typeUrl);
  }

  servedTypes(): ReadonlySet<string> {
    return this.served;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Validates a request before a stream is opened (the adapters check the first request
   * before admission). Throws GeneratorError with the status that ends the call.
   */
  checkRequest<R extends XdsRequest>(request: R, streamTypeUrl?: string): R {
    return checkRequest(request, { streamTypeUrl, served: this.served, maxResourceNames: this.maxResourceNames });
  }

  /** Takes over a stream whose proxy has been authenticated and admitted. */
  openStream(options: OpenStreamOptions): CoreStream {
    if (this.closed) throw new GeneratorError(status.UNAVAILABLE, 'meshd is shutting down; reconnect to another instance');
    this.sequence += 1;
    const id = `${this.tag}.${this.sequence.toString(36)}`;
    const connection = new Connection(id, options, this.connectionContext);
    this.streams.set(id, connection);
    this.metrics.connected.inc({ version: this.metrics.version });
    this.logger.info({
      proxy: clip(options.proxy.id), spiffeId: options.proxy.identity.spiffeId, peer: clip(options.peer),
      service: options.service, mode: options.mode, connection: id,
    }, 'xDS stream opened');
    return connection;
  }

  /**
   * Re-generates for the affected proxies and types and sends only what changed.
   * Resolves when every affected stream has been processed; never rejects (a failing
   * stream is ended with its status and logged).
   */
  push(request: PushRequest): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.metrics.pushTriggers.inc({ type: request.reason });
    const typeUrls = request.typeUrls;
    const fixedTypes = typeof typeUrls === 'function' ? undefined : typeUrls && new Set(typeUrls);
    const selected = request.proxies;
    const matches = selected === undefined
      ? () => true
      : typeof selected === 'function' ? selected : (p: ProxyInfo) => selected.has(p.id);
    const queuedAt = this.clock.now();
    const reasons: ReadonlySet<string> = new Set([request.reason]);
    const typeSets = new Map<readonly string[], Set<string>>(); // one Set per distinct answer, not per proxy
    // One completion for the whole push rather than a promise per stream: a rotation storm
    // queues 10,000 streams in one synchronous pass. Starts at 1 so no early `done` can finish it.
    let pending = 1;
    let release!: () => void;
    const completed = new Promise<void>((resolve) => (release = resolve));
    const done = (): void => { if (--pending === 0) release(); };
    for (const connection of this.streams.values()) {
      if (fixedTypes !== undefined && !connection.subscribesAny(fixedTypes)) continue;
      let types = fixedTypes;
      try {
        if (!matches(connection.proxy)) continue;
        if (typeof typeUrls === 'function') {
          const list = typeUrls(connection.proxy);
          types = typeSets.get(list) ?? typeSets.set(list, new Set(list)).get(list)!;
          if (!connection.subscribesAny(types)) continue;
        }
      } catch (err) {
        this.metrics.internalErrors.inc();
        this.logger.error({ err, reason: request.reason }, 'push proxy selector threw; skipping that proxy');
        continue;
      }
      pending += 1;
      this.queue.enqueueJob(connection, { types, reasons, queuedAt }, done);
    }
    this.logger.debug({ reason: request.reason, types: fixedTypes && [...fixedTypes].map(shortTypeName), streams: pending - 1 }, 'push queued');
    done();
    return completed;
  }

  /** Resolves when no push is queued or running. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * Fetch* (unary, REST-like): the current resources for the request, with a version and
   * no nonce; no stream state is kept. Throws GeneratorError for refusals.
   */
  async fetch(proxy: ProxyInfo, raw: SotwRequest, streamTypeUrl?: string): Promise<Buffer> {
    if (this.closed) throw new GeneratorError(status.UNAVAILABLE, 'meshd is shutting down; reconnect to another instance');
    const request = this.checkRequest(raw, streamTypeUrl);
    const subscription = applySotwNames(EMPTY_SUBSCRIPTION, request.resourceNames).next;
    const generator = this.generators.get(request.typeUrl)!;
    const generated = await generator.generate(proxy, { names: subscription.wildcard ? undefined : subscription.names });
    const resources = uniqueByName(generated).unique.filter((r) => covers(subscription, r.name));
    const version = viewVersion(new Map(resources.map((r) => [r.name, r])));
    return encodeSotwResponse({ versionInfo: version, typeUrl: request.typeUrl, nonce: '', resources, controlPlane: this.controlPlaneId });
  }

  connections(): ConnectionStatus[] {
    return [...this.streams.values()].map((c) => c.status());
  }

  /** Each open stream's proxy id (clipped as in connections()) and connection time, without the per-type status. */
  proxyConnections(): Array<{ proxyId: string; connectedAt: number }> {
    return [...this.streams.values()].map((c) => ({ proxyId: clip(c.options.proxy.id), connectedAt: c.connectedAt }));
  }

  get connectedCount(): number {
    return this.streams.size;
  }

  /**
   * Shutdown: ends every stream with `code` (UNAVAILABLE by default) so proxies reconnect
   * elsewhere, and refuses new ones.
   */
  close(code: status = status.UNAVAILABLE, message = 'meshd is shutting down; reconnect to another instance'): void {
    this.closed = true;
    for (const connection of [...this.streams.values()]) connection.end(code, message);
  }

  private forget(connection: Connection): void {
    if (!this.streams.delete(connection.id)) return;
    this.queue.cancel(connection);
    this.metrics.connected.dec({ version: this.metrics.version });
    this.logger.info({ proxy: clip(connection.proxy.id), connection: connection.id }, 'xDS stream closed');
  }
}
