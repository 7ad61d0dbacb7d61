import { status, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { lazyChild, type Logger } from '../../common/logger.js';
import { AuthenticationError, type AuthContext, type Authenticator, type Identity } from '../../auth/identity.js';
import { GeneratorError, type AdmitProxy, type ProxyInfo } from '../core/types.js';
import type { DiscoveryCore } from '../core/discovery-core.js';
import type { CoreStream, StreamSink } from '../core/connection.js';
import type { NodeInfo, SotwRequest, XdsRequest } from '../core/requests.js';
import { clip } from '../core/requests.js';
import type { MalformedRequest } from './definitions.js';

export interface DiscoveryServiceDeps {
  core: DiscoveryCore;
  authenticator: Authenticator;
  logger: Logger;
  /** Ties a node to its proven identity (and WorkloadEntry); throw GeneratorError to refuse. Default: admit. */
  admit?: AdmitProxy;
}

export interface StreamSpec {
  mode: 'sotw' | 'delta';
  /** 'ads', 'sds', 'lds', ... */
  service: string;
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
export function serveStream(call: ServerDuplexStream<XdsRequest | MalformedRequest, Buffer>, spec: StreamSpec, deps: DiscoveryServiceDeps): void {
  const peer = safePeer(call);
  const log = lazyChild(deps.logger, () => ({ component: 'xds-service', service: spec.service, mode: spec.mode, peer }));
  let coreStream: CoreStream | undefined;
  let ended = false;
  const early: XdsRequest[] = [];
  let firstRequest!: (request: XdsRequest | undefined) => void;
  const first = new Promise<XdsRequest | undefined>((resolve) => (firstRequest = resolve));

  const endCall = (s: Status): void => {
    if (ended) return;
    ended = true;
    firstRequest(undefined);
    if (call.cancelled || call.destroyed) return;
    if (s.code === status.OK) call.end();
    // grpc-js turns an 'error' carrying a code into the call's status, after queued writes.
    else call.emit('error', Object.assign(new Error(s.details), s));
  };
  const sink: StreamSink = {
    write(bytes) {
      if (ended || call.cancelled || call.destroyed || call.writableEnded) return false;
      call.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return true;
    },
    end(code, details) {
      endCall({ code, details });
    },
    // grpc-js's call is an object-mode Writable (16 messages): needDrain once that many
    // responses wait behind HTTP/2 flow control.
    writable() {
      return !call.writableNeedDrain;
    },
    onDrain(listener) {
      call.once('drain', listener);
    },
  };
  const transportGone = (): void => {
    ended = true;
    firstRequest(undefined);
    coreStream?.closed();
  };

  call.on('data', (request: XdsRequest | MalformedRequest): void => {
    if (ended) return;
    if (request.kind === 'malformed') {
      log().warn({ message: request.message }, 'malformed xDS request');
      endCall({ code: status.INVALID_ARGUMENT, details: request.message });
      coreStream?.closed();
      return;
    }
    if (coreStream) { coreStream.receive(request); return; }
    if (early.length === 0) firstRequest(request);
    early.push(request);
    if (early.length > MAX_EARLY_REQUESTS) {
      endCall({ code: status.RESOURCE_EXHAUSTED, details: `more than ${MAX_EARLY_REQUESTS} requests before the stream was admitted` });
    }
  });
  // Envoy never half-closes an xDS stream; if a client does, the conversation is over.
  call.on('end', () => {
    coreStream?.closed();
    endCall({ code: status.OK, details: 'OK' });
  });
  call.on('cancelled', transportGone);
  call.on('close', transportGone);
  call.on('error', () => {
    // Our own status 'error's and write-after-destroy land here; grpc-js handles the status.
  });

  void (async () => {
    const identity = await authenticate(call.metadata, call.getAuthContext() as AuthContext | null, peer, spec.service, deps, log);
    const request = await first;
    if (ended || !request) return;
    // Check the first request before admission: a bad type URL costs nothing.
    deps.core.checkRequest(request, spec.streamTypeUrl);
    const proxy = proxyOf(request.node, identity);
    if (deps.admit) await deps.admit(proxy);
    if (ended) return;
    coreStream = deps.core.openStream({ proxy, peer, mode: spec.mode, service: spec.service, streamTypeUrl: spec.streamTypeUrl, sink });
    for (const r of early.splice(0)) coreStream.receive(r);
  })().catch((err: unknown) => endCall(statusOf(err, log)));
}

/** Fetch*: authenticate, admit, answer with the current resources; no nonce, no state. */
export function serveFetch(
  call: ServerUnaryCall<SotwRequest | MalformedRequest, Buffer>, callback: sendUnaryData<Buffer>, spec: StreamSpec, deps: DiscoveryServiceDeps,
): void {
  const request = call.request;
  const peer = safePeer(call);
  const log = lazyChild(deps.logger, () => ({ component: 'xds-service', service: spec.service, mode: 'fetch', peer }));
  void (async () => {
    const identity = await authenticate(call.metadata, call.getAuthContext() as AuthContext | null, peer, spec.service, deps, log);
    if (request.kind === 'malformed') throw new GeneratorError(status.INVALID_ARGUMENT, request.message);
    deps.core.checkRequest(request, spec.streamTypeUrl);
    const proxy = proxyOf(request.node, identity);
    if (deps.admit) await deps.admit(proxy);
    return deps.core.fetch(proxy, request, spec.streamTypeUrl);
  })().then(
    (bytes) => callback(null, bytes),
    (err: unknown) => {
      const s = statusOf(err, log);
      callback({ code: s.code, details: s.details, name: 'Error', message: s.details });
    },
  );
}

async function authenticate(
  metadata: ServerDuplexStream<unknown, unknown>['metadata'], authContext: AuthContext | null, peer: string,
  service: string, deps: DiscoveryServiceDeps, log: () => Logger,
): Promise<Identity> {
  try {
    return await deps.authenticator.authenticate({ metadata, authContext, peer });
  } catch (err) {
    if (err instanceof AuthenticationError) {
      // The message is the authenticator's, which never includes the credential itself.
      log().warn({ reason: err.reason, message: err.message, service }, 'xDS stream refused: authentication failed');
      throw new GeneratorError(status.UNAUTHENTICATED, `authentication failed: ${err.message}`);
    }
    throw err;
  }
}

/** D.1: only the first request is guaranteed to carry node; the core caches the proxy built from it. */
function proxyOf(node: NodeInfo | undefined, identity: Identity): ProxyInfo {
  if (!node || node.id === '') {
    throw new GeneratorError(status.INVALID_ARGUMENT, 'the first request on an xDS stream must carry node with a non-empty id');
  }
  return { id: node.id, cluster: node.cluster, metadata: node.metadata, userAgent: node.userAgent, identity };
}

function statusOf(err: unknown, log: () => Logger): Status {
  if (err instanceof GeneratorError) return { code: err.code, details: err.message };
  if (err instanceof AuthenticationError) return { code: status.UNAUTHENTICATED, details: `authentication failed: ${err.message}` };
  log().error({ err }, 'internal error opening an xDS stream');
  return { code: status.INTERNAL, details: `meshd failed to open the stream: ${clip(err instanceof Error ? err.message : String(err))}` };
}

function safePeer(call: { getPeer(): string }): string {
  try {
    return call.getPeer();
  } catch {
    return 'unknown';
  }
}
