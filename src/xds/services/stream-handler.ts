import { status, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { lazyChild, type Logger } from '../../common/logger.js';
import { AuthenticationError, type AuthContext, type Authenticator, type Identity } from '../../auth/identity.js';
import { unverifiedClientCertificate } from '../../auth/tls-peer.js';
import { GeneratorError, type AdmitProxy, type ProxyInfo } from '../core/types.js';
import type { DiscoveryCore } from '../core/discovery-core.js';
import type { CoreStream, StreamSink } from '../core/connection.js';
import type { NodeInfo, SotwRequest, XdsRequest } from '../core/requests.js';
import { clip } from '../core/limits.js';
import type { MalformedRequest } from './definitions.js';
import { asBuffer } from '../../common/bytes.js';
import type { HandlerErrors } from '../../common/handler-errors.js';

export interface DiscoveryServiceDeps {
  core: DiscoveryCore;
  authenticator: Authenticator;
  logger: Logger;
  /** Ties a node to its proven identity (and WorkloadEntry); throw GeneratorError to refuse. Default: admit. */
  admit?: AdmitProxy;
  /** Counts and logs unexpected errors (meshd_handler_errors_total); addDiscoveryServices makes one when none is given. */
  errors?: HandlerErrors;
}

/** The dependencies as the handlers use them: with the error report always there. */
export type ServingDeps = DiscoveryServiceDeps & { errors: HandlerErrors };

export interface StreamSpec {
  mode: 'sotw' | 'delta';
  /** 'ads', 'sds', 'lds', ... */
  service: string;
  /** The gRPC method path, naming the handler in error reports. */
  method: string;
  streamTypeUrl?: string;
}

/** Requests a client may send before its stream is admitted; more is abuse. */
const MAX_EARLY_REQUESTS = 64;

interface Status { code: status; details: string }

/**
 * One code path for every xDS stream (ADS and per-type, SotW and delta; secrets like any
 * other type): authenticate when the stream opens, take the node from the first request,
 * admit the proxy, then hand every request to the core, which owns the protocol.
 */
export function serveStream(call: ServerDuplexStream<XdsRequest | MalformedRequest, Buffer>, spec: StreamSpec, deps: ServingDeps): void {
  new XdsStreamSession(call, spec, deps).start();
}

/** Our own status 'error's and write-after-destroy land here; grpc-js handles the status. */
const ignoreCallError = (): void => undefined;

/**
 * One stream, from open to end, as one object that is also the core's sink. A fleet holds
 * one per proxy for as long as it is connected, so its state is fields rather than closures
 * over closures, and what only admission needs (the identity, the requests that came
 * before it) is dropped once the core owns the stream.
 */
class XdsStreamSession implements StreamSink {
  private readonly peer: string;
  private coreStream: CoreStream | undefined;
  private ended = false;
  /** Requests received before admission, in order; undefined once the core owns the stream. */
  private early: XdsRequest[] | undefined = [];
  /** Set once authentication succeeded, until admission starts. */
  private identity: Identity | undefined;
  private admitting = false;
  private logger: Logger | undefined;

  constructor(
    private readonly call: ServerDuplexStream<XdsRequest | MalformedRequest, Buffer>,
    private readonly spec: StreamSpec,
    private readonly deps: ServingDeps,
  ) {
    this.peer = safePeer(call);
  }

  /** A child logger made only when something is logged about this stream (see lazyChild). */
  private log(): Logger {
    return (this.logger ??= this.deps.logger.child({ component: 'xds-service', service: this.spec.service, mode: this.spec.mode, peer: this.peer }));
  }

  start(): void {
    const { call } = this;
    const gone = (): void => this.transportGone();
    call.on('data', (request: XdsRequest | MalformedRequest) => this.receive(request));
    // Envoy never half-closes an xDS stream; if a client does, the conversation is over.
    call.on('end', () => {
      this.coreStream?.closed();
      this.endCall({ code: status.OK, details: 'OK' });
    });
    call.on('cancelled', gone);
    call.on('close', gone);
    call.on('error', ignoreCallError);
    const log = (): Logger => this.log();
    authenticate(call, this.peer, this.spec.service, this.deps, log).then(
      (identity) => {
        if (this.ended) return;
        this.identity = identity;
        if (this.early!.length > 0) this.admit();
      },
      (err: unknown) => this.endCall(statusOf(err, this.spec, this.deps, this.peer)),
    );
  }

  private receive(request: XdsRequest | MalformedRequest): void {
    if (this.ended) return;
    if (request.kind === 'malformed') {
      this.log().warn({ message: request.message }, 'malformed xDS request');
      this.endCall({ code: status.INVALID_ARGUMENT, details: request.message });
      this.coreStream?.closed();
      return;
    }
    if (this.coreStream) { this.coreStream.receive(request); return; }
    const early = this.early!;
    early.push(request);
    if (early.length > MAX_EARLY_REQUESTS) {
      this.endCall({ code: status.RESOURCE_EXHAUSTED, details: `more than ${MAX_EARLY_REQUESTS} requests before the stream was admitted` });
      return;
    }
    if (early.length === 1 && this.identity) this.admit();
  }

  /** Authenticated, and the first request is here: check it, admit the proxy, hand the stream to the core. */
  private admit(): void {
    if (this.admitting) return;
    this.admitting = true;
    const identity = this.identity!;
    this.identity = undefined;
    void (async () => {
      const first = this.early![0]!;
      // Check the first request before admission: a bad type URL costs nothing.
      this.deps.core.checkRequest(first, this.spec.streamTypeUrl);
      const proxy = proxyOf(first.node, identity);
      if (this.deps.admit) await this.deps.admit(proxy);
      if (this.ended) return;
      const { spec } = this;
      this.coreStream = this.deps.core.openStream({
        proxy, peer: this.peer, mode: spec.mode, service: spec.service, method: spec.method, streamTypeUrl: spec.streamTypeUrl, sink: this,
      });
      const early = this.early!;
      this.early = undefined;
      for (const r of early) this.coreStream.receive(r);
    })().catch((err: unknown) => this.endCall(statusOf(err, this.spec, this.deps, this.peer)));
  }

  private endCall(s: Status): void {
    if (this.ended) return;
    this.ended = true;
    this.early = undefined;
    const { call } = this;
    if (call.cancelled || call.destroyed) return;
    if (s.code === status.OK) call.end();
    // grpc-js turns an 'error' carrying a code into the call's status, after queued writes.
    else call.emit('error', Object.assign(new Error(s.details), s));
  }

  private transportGone(): void {
    this.ended = true;
    this.early = undefined;
    this.coreStream?.closed();
  }

  // StreamSink: how the core writes to and ends this stream.

  write(bytes: Uint8Array): boolean {
    const { call } = this;
    if (this.ended || call.cancelled || call.destroyed || call.writableEnded) return false;
    call.write(asBuffer(bytes));
    return true;
  }

  end(code: status, details: string): void {
    this.endCall({ code, details });
  }

  // grpc-js's call is an object-mode Writable (16 messages): needDrain once that many
  // responses wait behind HTTP/2 flow control.
  writable(): boolean {
    return !this.call.writableNeedDrain;
  }

  onDrain(listener: () => void): void {
    this.call.once('drain', listener);
  }
}

/** Fetch*: authenticate, admit, answer with the current resources; no nonce, no state. */
export function serveFetch(
  call: ServerUnaryCall<SotwRequest | MalformedRequest, Buffer>, callback: sendUnaryData<Buffer>, spec: StreamSpec, deps: ServingDeps,
): void {
  const request = call.request;
  const peer = safePeer(call);
  const log = lazyChild(deps.logger, () => ({ component: 'xds-service', service: spec.service, mode: 'fetch', peer }));
  void (async () => {
    const identity = await authenticate(call, peer, spec.service, deps, log);
    if (request.kind === 'malformed') throw new GeneratorError(status.INVALID_ARGUMENT, request.message);
    deps.core.checkRequest(request, spec.streamTypeUrl);
    const proxy = proxyOf(request.node, identity);
    if (deps.admit) await deps.admit(proxy);
    return deps.core.fetch(proxy, request, spec.streamTypeUrl);
  })().then(
    (bytes) => callback(null, bytes),
    (err: unknown) => {
      const s = statusOf(err, spec, deps, peer);
      callback({ code: s.code, details: s.details, name: 'Error', message: s.details });
    },
  );
}

async function authenticate(
  call: Pick<ServerDuplexStream<unknown, unknown>, 'metadata' | 'getAuthContext'>, peer: string,
  service: string, deps: DiscoveryServiceDeps, log: () => Logger,
): Promise<Identity> {
  try {
    return await deps.authenticator.authenticate({
      metadata: call.metadata, authContext: call.getAuthContext() as AuthContext | null, peer, unverifiedCertificate: unverifiedClientCertificate(call),
    });
  } catch (err) {
    if (err instanceof AuthenticationError) {
      // The message is the authenticator's, which never includes the credential itself.
      log().warn({ reason: err.reason, message: err.message, service }, 'xDS stream refused: authentication failed');
      throw new GeneratorError(err.permissionDenied ? status.PERMISSION_DENIED : status.UNAUTHENTICATED, `authentication failed: ${err.message}`);
    }
    throw err;
  }
}

/** xds_protocol: only the first request is guaranteed to carry node; the core caches the proxy built from it. */
function proxyOf(node: NodeInfo | undefined, identity: Identity): ProxyInfo {
  if (!node || node.id === '') {
    throw new GeneratorError(status.INVALID_ARGUMENT, 'the first request on an xDS stream must carry node with a non-empty id');
  }
  return { id: node.id, cluster: node.cluster, metadata: node.metadata, userAgent: node.userAgent, identity };
}

/** A refusal keeps its status; anything else is an unexpected error: INTERNAL, counted and logged by HandlerErrors. */
function statusOf(err: unknown, spec: StreamSpec, deps: ServingDeps, peer: string): Status {
  if (err instanceof GeneratorError) return { code: err.code, details: err.message };
  if (err instanceof AuthenticationError) {
    return { code: err.permissionDenied ? status.PERMISSION_DENIED : status.UNAUTHENTICATED, details: `authentication failed: ${err.message}` };
  }
  return { code: status.INTERNAL, details: `meshd failed to open the stream: ${deps.errors.report('grpc', spec.method, err, { peer })}` };
}

/** The peer address as grpc-js reports it, cut like any text that reaches a log line or /debug. */
function safePeer(call: { getPeer(): string }): string {
  try {
    return clip(call.getPeer());
  } catch {
    return 'unknown';
  }
}
