import type protobuf from 'protobufjs';
import { status, type Client, type ClientDuplexStream, type ServerDuplexStream, type StatusObject } from '@grpc/grpc-js';
import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import { errorMessage } from '../ca/errors.js';
import { lookupType } from '../envoy/protos.js';
import { resourceType } from '../envoy/resource-types.js';
import { encodeSotwResponse } from '../xds/core/wire.js';
import { backoffDelay, type BackoffPolicy } from '../common/renewal-policy.js';
import { readSotwResponse, type LastConfig } from './last-config.js';
import type { MeshdCredential } from './credentials.js';
import { meshdChannel, type MeshdTarget } from './meshd-channel.js';

/**
 * One workload's state-of-the-world ADS stream through the agent. The workload's stream stays
 * open for as long as the workload keeps it, whatever happens to meshd: gRPC C-core and
 * grpc-js fail every new channel once their xDS stream has ended without a response, so ending
 * it on a meshd restart would take the workload's new connections down with meshd.
 *
 * - meshd reachable: requests and responses pass through as they are; every response is also
 *   recorded in LastConfig (per node id and type, with meshd's version).
 * - meshd unreachable (the upstream stream failed, or could not open): each request that asks
 *   for something (a type's first request, or new resource names) is answered from LastConfig
 *   with meshd's version and a nonce of the agent's own; the upstream is retried with the
 *   capped, jittered backoff (the first retry at once, then initial × 2^n, at most maxMs).
 * - meshd back: the agent resubscribes every type the workload holds, with the names it asked
 *   for and the version it last accepted (as Envoy does on a new stream), so meshd answers
 *   with what changed meanwhile.
 * - Nonces: meshd ignores a request whose nonce is not its latest for the type (a stale
 *   nonce). An ACK or NACK of an answer meshd did not send (the agent's, or one from an
 *   upstream stream that has ended) is not forwarded; if it also changes the subscription it
 *   is forwarded with meshd's latest nonce of the current stream, so the change is not lost.
 * - A refusal that is about the workload's request (INVALID_ARGUMENT, PERMISSION_DENIED,
 *   RESOURCE_EXHAUSTED, FAILED_PRECONDITION, UNIMPLEMENTED) ends the workload's stream with
 *   meshd's status and details; any other end (UNAVAILABLE, UNAUTHENTICATED while the agent
 *   has no credential, a meshd shutdown) is retried.
 */
export interface RelayDeps {
  target: MeshdTarget;
  method: string;
  credential: () => Promise<MeshdCredential>;
  trustedRoots: () => Promise<string>;
  lastConfig: LastConfig;
  clock: Clock;
  random: () => number;
  backoff: BackoffPolicy;
  logger: Logger;
  /** meshd's link state changed for this stream (metrics). */
  onUpstream?: (up: boolean) => void;
  /** A request was answered from LastConfig (metrics). */
  onCachedAnswer?: (typeUrl: string) => void;
}

const WORKLOAD_ERRORS = new Set([status.INVALID_ARGUMENT, status.PERMISSION_DENIED, status.RESOURCE_EXHAUSTED, status.FAILED_PRECONDITION, status.UNIMPLEMENTED]);
/** How many nonces of the current upstream stream are remembered per type (meshd only honours its latest). */
const NONCES_KEPT = 8;

const DiscoveryRequest = (): protobuf.Type => lookupType('envoy.service.discovery.v3.DiscoveryRequest');
type RequestMessage = protobuf.Message & {
  version_info?: string; node?: protobuf.Message & { id?: string }; resource_names?: string[];
  type_url?: string; response_nonce?: string; error_detail?: unknown;
};

interface TypeState {
  /** The workload's current subscription. */
  names: string[];
  /** The version the workload last accepted (its requests' version_info). */
  version: string;
  /** A request that wants an answer has not been answered yet. */
  awaiting: boolean;
  /** Nonces meshd sent on the current upstream stream, newest last. */
  upstreamNonces: string[];
  /** The subscription meshd last heard on the current upstream stream. */
  upstreamNames: string[] | undefined;
}

function sameNames(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (a === undefined || a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((n) => s.has(n));
}

export class SotwRelay {
  private readonly types = new Map<string, TypeState>();
  private node: protobuf.Message | undefined;
  private nodeId = '';
  private upstream: { call: ClientDuplexStream<Buffer, Buffer>; client: Client; nodeSent: boolean } | undefined;
  private connecting = false;
  private retryCancel: (() => void) | undefined;
  private attempt = 0;
  private down = false;
  private ended = false;
  /** The workload half-closed its stream: the relay ends once meshd has ended its side. */
  private halfClosed = false;
  private nonceSeq = 0;
  private readonly log: Logger;

  constructor(private readonly deps: RelayDeps, private readonly workload: ServerDuplexStream<Buffer, Buffer>) {
    this.log = deps.logger;
    workload.on('data', (b: Buffer) => this.fromWorkload(b));
    workload.on('end', () => this.workloadDone());
    workload.on('cancelled', () => this.close(false));
    workload.on('close', () => this.close(false));
    workload.on('error', () => undefined);
  }

  /** Ends the relay (agent shutdown or the workload left); the workload's stream is ended with UNAVAILABLE if still open. */
  close(graceful: boolean, reason?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.retryCancel?.();
    const up = this.upstream;
    this.upstream = undefined;
    if (up) {
      if (graceful) up.call.end();
      else up.call.cancel();
      up.client.close();
    }
    if (reason !== undefined) this.endWorkload(status.UNAVAILABLE, reason);
  }

  private workloadDone(): void {
    this.halfClosed = true;
    if (this.upstream) {
      this.upstream.call.end();
      return;
    }
    this.close(true);
    this.endWorkload(status.OK, '');
  }

  private endWorkload(code: status, details: string): void {
    const w = this.workload;
    if (w.cancelled || w.destroyed || w.writableEnded) return;
    if (code === status.OK) w.end();
    else w.emit('error', Object.assign(new Error(details), { code, details }));
  }

  private fromWorkload(bytes: Buffer): void {
    if (this.ended) return;
    let req: RequestMessage;
    try {
      req = DiscoveryRequest().decode(bytes) as RequestMessage;
    } catch (e) {
      this.close(false);
      this.endWorkload(status.INVALID_ARGUMENT, `the agent cannot decode a DiscoveryRequest: ${errorMessage(e)}`);
      return;
    }
    if (this.node === undefined && req.node !== undefined && req.node !== null) {
      this.node = req.node;
      this.nodeId = req.node.id ?? '';
    }
    const typeUrl = req.type_url ?? '';
    const names = req.resource_names ?? [];
    const nonce = req.response_nonce ?? '';
    let st = this.types.get(typeUrl);
    if (!st) this.types.set(typeUrl, (st = { names: [], version: '', awaiting: false, upstreamNonces: [], upstreamNames: undefined }));
    const changed = !sameNames(st.names, names) || nonce === '';
    st.names = names;
    st.version = req.version_info ?? '';
    if (changed) st.awaiting = true;

    const up = this.upstream;
    if (up) {
      this.forward(up, req, bytes, st, typeUrl);
      return;
    }
    if (changed) this.answerFromLastConfig(typeUrl, st);
    if (!this.connecting && this.retryCancel === undefined) void this.connect();
  }

  private forward(up: NonNullable<SotwRelay['upstream']>, req: RequestMessage, bytes: Buffer, st: TypeState, typeUrl: string): void {
    const nonce = req.response_nonce ?? '';
    let out: Buffer | undefined = bytes;
    if (nonce !== '' && !st.upstreamNonces.includes(nonce)) {
      // Answers a response meshd did not send on this stream: meshd would drop it as stale.
      if (sameNames(st.upstreamNames, st.names)) return;
      out = undefined;
    }
    if (out === undefined || (!up.nodeSent && !req.node)) {
      const T = DiscoveryRequest();
      out = Buffer.from(T.encode(T.create({
        version_info: st.version,
        ...(up.nodeSent ? {} : { node: this.node }),
        resource_names: st.names,
        type_url: typeUrl,
        response_nonce: nonce !== '' && !st.upstreamNonces.includes(nonce) ? st.upstreamNonces.at(-1) ?? '' : nonce,
        ...(req.error_detail && st.upstreamNonces.includes(nonce) ? { error_detail: req.error_detail } : {}),
      })).finish());
    }
    up.nodeSent = true;
    st.upstreamNames = st.names;
    up.call.write(out);
  }

  private answerFromLastConfig(typeUrl: string, st: TypeState): void {
    if (!st.awaiting) return;
    const snapshot = this.deps.lastConfig.get(this.nodeId, typeUrl);
    if (snapshot === undefined) return; // nothing known: the workload waits for meshd
    const resources = this.deps.lastConfig.select(snapshot, st.names);
    const nonce = `agent-${++this.nonceSeq}`;
    st.awaiting = false;
    if (this.workload.cancelled || this.workload.destroyed) return;
    this.workload.write(encodeSotwResponse({ versionInfo: snapshot.version, typeUrl, nonce, resources }));
    this.deps.onCachedAnswer?.(typeUrl);
    this.log.debug({ node: this.nodeId, type: typeUrl, version: snapshot.version, resources: resources.length }, 'answered from the last configuration meshd sent');
  }

  private async connect(): Promise<void> {
    if (this.ended || this.connecting || this.upstream) return;
    this.connecting = true;
    let credential: MeshdCredential;
    let roots: string;
    try {
      [credential, roots] = await Promise.all([this.deps.credential(), this.deps.trustedRoots()]);
    } catch (e) {
      this.connecting = false;
      this.lost(`no credential for meshd: ${errorMessage(e)}`);
      return;
    }
    this.connecting = false;
    if (this.ended) return;
    const { client, metadata } = meshdChannel(this.deps.target, roots, credential);
    const call = client.makeBidiStreamRequest(`/${this.deps.method}`, (b: Buffer) => b, (b: Buffer) => b, metadata);
    const up = { call, client, nodeSent: false };
    this.upstream = up;
    call.on('data', (b: Buffer) => this.fromMeshd(up, b));
    call.on('status', (s: StatusObject) => this.upstreamEnded(up, s));
    call.on('error', () => { /* reported through 'status' */ });
    // Resubscribe everything the workload holds, with the versions it accepted (Envoy's reconnect).
    for (const [typeUrl, st] of this.types) {
      st.upstreamNonces = [];
      const T = DiscoveryRequest();
      call.write(Buffer.from(T.encode(T.create({
        version_info: st.version,
        ...(up.nodeSent ? {} : { node: this.node }),
        resource_names: st.names,
        type_url: typeUrl,
        response_nonce: '',
      })).finish()));
      up.nodeSent = true;
      st.upstreamNames = st.names;
    }
  }

  private fromMeshd(up: NonNullable<SotwRelay['upstream']>, bytes: Buffer): void {
    if (this.upstream !== up || this.ended) return;
    if (this.down || this.attempt > 0) {
      if (this.down) this.log.info({ node: this.nodeId }, 'meshd is back: the xDS stream is passing through again');
      this.down = false;
      this.attempt = 0;
      this.deps.onUpstream?.(true);
    }
    try {
      const view = readSotwResponse(bytes);
      const st = this.types.get(view.typeUrl);
      if (st) {
        st.upstreamNonces.push(view.nonce);
        if (st.upstreamNonces.length > NONCES_KEPT) st.upstreamNonces.shift();
        st.awaiting = false;
      }
      if (this.nodeId !== '') {
        this.deps.lastConfig.record(this.nodeId, view.typeUrl, view.versionInfo, view.resources, resourceType(view.typeUrl)?.fullStateInSotw === true);
      }
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, 'a response from meshd does not decode; passed on without recording it');
    }
    if (!this.workload.cancelled && !this.workload.destroyed) this.workload.write(bytes);
  }

  private upstreamEnded(up: NonNullable<SotwRelay['upstream']>, s: StatusObject): void {
    up.client.close();
    if (this.upstream !== up || this.ended) return;
    this.upstream = undefined;
    if (this.halfClosed) {
      this.close(true);
      this.endWorkload(s.code, s.details);
      return;
    }
    if (WORKLOAD_ERRORS.has(s.code)) {
      this.log.warn({ node: this.nodeId, code: status[s.code], details: s.details }, 'meshd refused the workload\'s xDS stream; ending it with meshd\'s status');
      this.close(false);
      this.endWorkload(s.code, s.details);
      return;
    }
    this.lost(`${status[s.code] ?? s.code}: ${s.details}`);
  }

  /** meshd cannot be reached (or the agent has no credential): answer from LastConfig, retry. */
  private lost(reason: string): void {
    if (this.ended) return;
    if (!this.down) {
      this.down = true;
      this.deps.onUpstream?.(false);
      this.log.warn({ node: this.nodeId, err: reason }, 'lost meshd: the workload\'s xDS stream stays open and is answered from the last configuration meshd sent; reconnecting');
    }
    for (const [typeUrl, st] of this.types) this.answerFromLastConfig(typeUrl, st);
    // The first retry at once (a meshd restart drops every stream while it is already back on
    // a replica or a moment later), then the backoff.
    const delay = this.attempt === 0 ? 0 : backoffDelay(this.attempt - 1, this.deps.backoff, this.deps.random());
    this.attempt += 1;
    this.retryCancel?.();
    this.retryCancel = this.deps.clock.timer(delay, () => {
      this.retryCancel = undefined;
      void this.connect();
    });
  }
}
