import { status } from '@grpc/grpc-js';
import type { Logger } from '../../common/logger.js';
import type { Clock } from '../../common/clock.js';
import { resourceType, shortTypeName, RESOURCE_TYPES } from '../../envoy/resource-types.js';
import { GeneratorError, type Generator, type ProxyInfo } from './types.js';
import { checkRequest, type ErrorDetail, type XdsRequest } from './requests.js';
import { clip, MAX_LOGGED_EXAMPLES, MAX_NACK_MESSAGE_CHARS } from './limits.js';
import { SotwTypeState } from './sotw-state.js';
import type { SentSummary } from './type-state.js';
import { DeltaTypeState } from './delta-state.js';
import { NonceIssuer } from './nonce.js';
import { uniqueByName } from './resource.js';
import { encodeDeltaResponse, encodeSotwResponse } from './wire.js';
import type { CoreMetrics } from './metrics.js';
import { mergeJob, type PushJob } from './push-queue.js';
import type { ConnectionStatus, TypeStatus } from './connection-status.js';
import type { HandlerErrors } from '../../common/handler-errors.js';

/** How the core writes to, and ends, one gRPC stream. The adapters implement it. */
export interface StreamSink {
  /** Writes one encoded response. False when the stream is gone. */
  write(bytes: Uint8Array): boolean;
  /**
   * False while the transport already holds as many unsent responses as it should: the
   * client is not reading (HTTP/2 flow control has stopped us). Pushes then wait for `onDrain`.
   */
  writable(): boolean;
  /** Calls `listener` once, when the transport has room again. */
  onDrain(listener: () => void): void;
  /** Ends the stream with a status (the adapter turns it into gRPC trailers). */
  end(code: status, details: string): void;
}

export interface OpenStreamOptions {
  proxy: ProxyInfo;
  /** Peer address, for logs and the debug view. */
  peer: string;
  mode: 'sotw' | 'delta';
  /** Which gRPC service the stream came in on: 'ads', 'sds', 'lds', 'cds', 'rds', 'eds'. */
  service: string;
  /** The gRPC method path, naming the handler when an unexpected error ends the stream. */
  method: string;
  /** The one type a per-type stream serves; undefined on ADS. */
  streamTypeUrl?: string;
  sink: StreamSink;
}

/** A stream as the adapter sees it once the core owns it. */
export interface CoreStream {
  readonly id: string;
  /** Hands over one request (already decoded). Requests are processed in order. */
  receive(request: XdsRequest): void;
  /** The transport went away (client cancelled, disconnected or half-closed). */
  closed(): void;
}

/** What a connection needs from its core. */
export interface ConnectionContext {
  generator(typeUrl: string): Generator | undefined;
  served(): ReadonlySet<string>;
  maxResourceNames: number;
  metrics: CoreMetrics;
  logger: Logger;
  /** Unexpected errors: counted in meshd_handler_errors_total and logged, boundedly. */
  errors: HandlerErrors;
  clock: Clock;
  controlPlane: string | undefined;
  onEnd(connection: Connection): void;
  /** Puts a push this connection held back (flow control) into the core's push queue again. */
  requeue(connection: Connection, job: PushJob): void;
}

type TypeState = SotwTypeState | DeltaTypeState; // the two protocols (type-state.ts holds what they share)

/**
 * One xDS stream: per-type protocol state, requests and pushes processed one at a time
 * in arrival order, responses encoded from shared resource bytes.
 */
export class Connection implements CoreStream {
  readonly states = new Map<string, TypeState>();
  readonly connectedAt: number;
  private readonly nonces: NonceIssuer;
  private chain: Promise<void> = Promise.resolve();
  private open = true;
  private current: string | undefined;
  /** This stream's child logger, made when something is first logged about it (see lazyChild). */
  private logger: Logger | undefined;
  /** Pushes held back while the client is not reading, merged into one (see push). */
  private deferred: PushJob | undefined;

  constructor(readonly id: string, readonly options: OpenStreamOptions, private readonly ctx: ConnectionContext) {
    this.nonces = new NonceIssuer(id);
    this.connectedAt = ctx.clock.now();
  }

  private get log(): Logger {
    return (this.logger ??= this.ctx.logger.child({ proxy: clip(this.options.proxy.id), connection: this.id }));
  }

  get proxy(): ProxyInfo {
    return this.options.proxy;
  }

  get isOpen(): boolean {
    return this.open;
  }

  receive(request: XdsRequest): void {
    if (!this.open) return;
    void this.enqueue(() => this.handle(request));
  }

  /**
   * Runs a queued push: re-generates the job's types this stream subscribes to, in ADS order.
   *
   * Flow control: a client that stops reading (a stuck Envoy, a paused debugger) must not make
   * meshd buffer a response per push without bound. While the transport is full, pushes are
   * merged here into one job (union of types, earliest queue time) and go back to the push
   * queue when it drains; generating then sends only the newest state. A worker is never held
   * waiting, so one slow proxy does not slow the others. Answers to the client's own requests
   * are still written: it asked for them.
   */
  push(job: PushJob): Promise<void> {
    return this.enqueue(async () => {
      if (!this.options.sink.writable()) { this.defer(job); return; }
      for (const typeUrl of orderTypes([...this.states.keys()].filter((t) => !job.types || job.types.has(t)))) {
        if (!this.open) return;
        await this.respond(typeUrl, this.states.get(typeUrl)!, job.queuedAt, true);
      }
    });
  }

  private defer(job: PushJob): void {
    this.ctx.metrics.pushesDeferred.inc();
    if (this.deferred) {
      mergeJob(this.deferred, job);
      return;
    }
    this.deferred = { types: job.types, reasons: job.reasons, queuedAt: job.queuedAt }; // mergeJob replaces sets, never mutates them
    this.log.debug({ reasons: [...job.reasons] }, 'client is not reading; holding pushes until the stream drains');
    this.options.sink.onDrain(() => {
      const resumed = this.deferred;
      this.deferred = undefined;
      if (resumed && this.open) this.ctx.requeue(this, resumed);
    });
  }

  /** True when a push of `types` (undefined = all) concerns this stream. */
  subscribesAny(types: ReadonlySet<string> | undefined): boolean {
    if (!types) return this.states.size > 0;
    for (const t of types) if (this.states.has(t)) return true;
    return false;
  }

  closed(): void {
    this.finish();
  }

  /** Ends the stream with a status and forgets it. */
  end(code: status, details: string): void {
    if (!this.open) return;
    try {
      this.options.sink.end(code, details);
    } finally {
      this.finish();
    }
  }

  status(): ConnectionStatus {
    const types: TypeStatus[] = [];
    let lastAckLatencyMs: number | undefined;
    let lastAckAt = -Infinity;
    for (const typeUrl of orderTypes([...this.states.keys()])) {
      const s = this.states.get(typeUrl)!;
      if (s.lastAck && s.lastAck.at > lastAckAt) { lastAckAt = s.lastAck.at; lastAckLatencyMs = s.lastAck.latencyMs; }
      types.push({
        typeUrl,
        type: shortTypeName(typeUrl),
        status: s.status(),
        versionSent: s.latest?.version,
        nonceSent: s.latest?.nonce,
        versionAcked: s.lastAck?.version,
        lastAckAt: s.lastAck ? new Date(s.lastAck.at).toISOString() : undefined,
        subscribed: { wildcard: s.subscription.wildcard, names: s.subscription.names.size },
        resources: s.heldVersions().size,
        lastNack: s.lastNack && {
          message: s.lastNack.message, code: s.lastNack.code, version: s.lastNack.version,
          at: new Date(s.lastNack.at).toISOString(), resources: [...s.lastNack.names],
        },
      });
    }
    const { proxy } = this.options;
    return {
      connectionId: this.id,
      proxyId: clip(proxy.id),
      spiffeId: proxy.identity.spiffeId,
      peer: clip(this.options.peer),
      service: this.options.service,
      mode: this.options.mode,
      userAgent: clip(proxy.userAgent),
      connectedAt: new Date(this.connectedAt).toISOString(),
      lastAckLatencyMs,
      types,
    };
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(() => (this.open ? task() : undefined));
    this.chain = run.catch((err: unknown) => this.fail(err));
    return this.chain;
  }

  private async handle(raw: XdsRequest): Promise<void> {
    this.current = raw.typeUrl || this.options.streamTypeUrl;
    if (raw.kind !== this.options.mode) throw new Error(`a ${raw.kind} request on a ${this.options.mode} stream`);
    const request = checkRequest(raw, {
      streamTypeUrl: this.options.streamTypeUrl, served: this.ctx.served(), maxResourceNames: this.ctx.maxResourceNames,
    });
    const typeUrl = request.typeUrl;
    this.current = typeUrl;
    const type = shortTypeName(typeUrl);
    const now = this.ctx.clock.now();
    const issued = (nonce: string) => this.nonces.issued(nonce);

    if (request.kind === 'sotw') {
      let state = this.states.get(typeUrl) as SotwTypeState | undefined;
      if (!state) this.states.set(typeUrl, (state = new SotwTypeState(typeUrl, resourceType(typeUrl)?.fullStateInSotw === true)));
      const outcome = state.receive(request, issued);
      if (outcome.kind === 'stale') {
        this.ctx.metrics.expiredNonce.inc({ type });
        this.log.debug({ type, nonce: outcome.nonce, latest: state.latest?.nonce }, 'stale nonce: request superseded, not answered');
        return;
      }
      if (outcome.acked) this.onAck(state, outcome.acked, now);
      if (outcome.nacked) this.onNack(state, outcome.nacked.sent, outcome.nacked.detail, now);
      if (outcome.generate) await this.respond(typeUrl, state, now, false);
      return;
    }

    let state = this.states.get(typeUrl) as DeltaTypeState | undefined;
    if (!state) this.states.set(typeUrl, (state = new DeltaTypeState(typeUrl)));
    const outcome = state.receive(request, issued);
    if (state.subscription.names.size > this.ctx.maxResourceNames) {
      throw new GeneratorError(status.RESOURCE_EXHAUSTED,
        `the stream subscribes to ${state.subscription.names.size} resources of ${typeUrl}; meshd accepts at most ${this.ctx.maxResourceNames} per stream and type`);
    }
    if (outcome.expiredNonce) this.ctx.metrics.expiredNonce.inc({ type });
    if (outcome.acked) this.onAck(state, outcome.acked, now);
    if (outcome.nacked) this.onNack(state, outcome.nacked.sent, outcome.nacked.detail, now);
    if (outcome.generate) await this.respond(typeUrl, state, now, false);
  }

  private onAck(state: TypeState, sent: SentSummary, now: number): void {
    state.recordAck(sent, now);
    if (sent.pushed) this.ctx.metrics.convergence.observe(Math.max(0, now - sent.queuedAt) / 1000);
  }

  /** xds_protocol: a NACK is logged with the proxy, type, resources and message, counted and remembered. */
  private onNack(state: TypeState, sent: SentSummary, detail: ErrorDetail, now: number): void {
    state.recordNack(sent, detail, now);
    const type = shortTypeName(state.typeUrl);
    this.ctx.metrics.rejects.inc({ type });
    this.log.warn({
      type, version: sent.version, nonce: sent.nonce, resources: sent.names.slice(0, MAX_LOGGED_EXAMPLES).map((n) => clip(n)),
      resourceCount: sent.names.length, code: detail.code, message: clip(detail.message, MAX_NACK_MESSAGE_CHARS),
    }, 'proxy rejected (NACKed) a response; that content will not be sent to it again');
  }

  private async respond(typeUrl: string, state: TypeState, queuedAt: number, pushed: boolean): Promise<void> {
    const generator = this.ctx.generator(typeUrl);
    if (!generator) return;
    this.current = typeUrl;
    const type = shortTypeName(typeUrl);
    const started = performance.now();
    const generated = await generator.generate(this.options.proxy, state.generateRequest());
    if (!this.open) return;
    const { unique, duplicates } = uniqueByName(generated);
    if (duplicates.length > 0) {
      this.ctx.metrics.internalErrors.inc();
      this.log.error({ type, duplicates: duplicates.slice(0, 20) }, 'generator returned a resource name twice; only the first is sent');
    }
    const now = this.ctx.clock.now();
    let bytes: Uint8Array;
    let updated: readonly string[];
    if (state instanceof SotwTypeState) {
      const plan = state.plan(unique);
      if (!plan) return;
      updated = plan.updated;
      // xds_protocol: a fresh nonce for every response.
      const nonce = this.nonces.next();
      bytes = encodeSotwResponse({ versionInfo: plan.version, typeUrl, nonce, resources: plan.resources, controlPlane: this.ctx.controlPlane });
      state.commit(plan, nonce, now, queuedAt, pushed);
    } else {
      const plan = state.plan(unique);
      if (!plan) return;
      updated = plan.resources.map((r) => r.name);
      const nonce = this.nonces.next();
      bytes = encodeDeltaResponse({
        systemVersionInfo: plan.version, typeUrl, nonce, resources: plan.resources, removed: plan.removed, controlPlane: this.ctx.controlPlane,
      });
      state.commit(plan, nonce, now, queuedAt, pushed);
    }
    let written = false;
    try {
      written = this.options.sink.write(bytes);
    } catch (err) {
      // A client that disconnects mid-response: nothing to repair, the stream is over.
      this.log.debug({ err, type }, 'write failed; closing the stream');
    }
    this.ctx.metrics.pushes.inc({ type: written ? type : `${type}_senderr` });
    this.ctx.metrics.pushTime.observe({ type }, (performance.now() - started) / 1000);
    if (!written) { this.finish(); return; }
    // A changed resource warms until Envoy gets what it warms on again: the same-named ones
    // follow right after it (a changed cluster, then its endpoints), even when they did not change.
    if (updated.length === 0) return;
    for (const dependency of resourceType(typeUrl)?.warmsOn ?? []) {
      const dependent = dependency.sameName ? this.states.get(dependency.typeUrl) : undefined;
      if (dependent && dependent.force(updated) > 0) await this.respond(dependency.typeUrl, dependent, queuedAt, pushed);
    }
  }

  /** GeneratorError → its status; anything else → INTERNAL, logged and counted. */
  private fail(err: unknown): void {
    if (!this.open) return;
    const type = this.current ? shortTypeName(this.current) : undefined;
    if (err instanceof GeneratorError) {
      this.log.warn({ type, code: status[err.code], message: err.message }, 'ending xDS stream');
      this.end(err.code, err.message);
      return;
    }
    this.ctx.metrics.internalErrors.inc();
    const { proxy, method } = this.options;
    const what = this.ctx.errors.report('grpc', method, err, { proxy: clip(proxy.id), connection: this.id, type });
    this.end(status.INTERNAL, `meshd failed to serve ${this.current ?? 'the request'} for ${clip(proxy.id)}: ${what}`);
  }

  private finish(): void {
    if (!this.open) return;
    this.open = false;
    this.ctx.onEnd(this);
  }
}

/** In ADS push order (each type's pushRank: CDS, EDS, secrets, LDS, RDS); any other type after them. */
export function orderTypes(typeUrls: readonly string[]): string[] {
  const rank = (t: string) => resourceType(t)?.pushRank ?? RESOURCE_TYPES.length;
  return [...typeUrls].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}
