import * as grpc from '@grpc/grpc-js';
import { lookupType, decodeMessage } from '../../../src/envoy/protos.js';

/**
 * An xDS client that speaks SotW and delta the way Envoy does, built on grpc-js and
 * Envoy's own protos (decoded independently of the server's hand-written encoder):
 * - node only in the first request of a stream (Envoy's set_node_on_first_message_only);
 * - per type it remembers the subscribed names, the last accepted version and the last
 *   nonce, so `ack`/`nack`/`subscribe` send what Envoy would send;
 * - NACKs carry error_detail and the last *accepted* version (as Envoy and grpc-js-xds do).
 * Every response is also kept as raw bytes for byte-level assertions.
 */

export type ServiceName = 'ads' | 'sds' | 'lds' | 'cds' | 'rds' | 'eds';

const SERVICES: Record<ServiceName, { service: string; stream: string; delta: string; fetch?: string }> = {
  ads: { service: 'envoy.service.discovery.v3.AggregatedDiscoveryService', stream: 'StreamAggregatedResources', delta: 'DeltaAggregatedResources' },
  sds: { service: 'envoy.service.secret.v3.SecretDiscoveryService', stream: 'StreamSecrets', delta: 'DeltaSecrets', fetch: 'FetchSecrets' },
  lds: { service: 'envoy.service.listener.v3.ListenerDiscoveryService', stream: 'StreamListeners', delta: 'DeltaListeners', fetch: 'FetchListeners' },
  cds: { service: 'envoy.service.cluster.v3.ClusterDiscoveryService', stream: 'StreamClusters', delta: 'DeltaClusters', fetch: 'FetchClusters' },
  rds: { service: 'envoy.service.route.v3.RouteDiscoveryService', stream: 'StreamRoutes', delta: 'DeltaRoutes', fetch: 'FetchRoutes' },
  eds: { service: 'envoy.service.endpoint.v3.EndpointDiscoveryService', stream: 'StreamEndpoints', delta: 'DeltaEndpoints', fetch: 'FetchEndpoints' },
};

export interface Node {
  id: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
}

export interface DecodedAny {
  type_url: string;
  value: Buffer;
  /** The resource's name (Secret/Listener/Cluster/RouteConfiguration name, CLA cluster_name). */
  name: string;
  /** The payload decoded with Envoy's message type. */
  decoded: Record<string, unknown>;
}

export interface SotwResponse {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: DecodedAny[];
  control_plane?: { identifier: string };
  raw: Buffer;
}

export interface DeltaResource {
  name: string;
  version: string;
  resource: DecodedAny;
}

export interface DeltaResponse {
  system_version_info: string;
  type_url: string;
  nonce: string;
  resources: DeltaResource[];
  removed_resources: string[];
  raw: Buffer;
}

type Plain = Record<string, any>;

const DiscoveryRequest = () => lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const DiscoveryResponse = () => lookupType('envoy.service.discovery.v3.DiscoveryResponse');
const DeltaDiscoveryRequest = () => lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const DeltaDiscoveryResponse = () => lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');

function encode(type: ReturnType<typeof lookupType>, value: Plain): Buffer {
  const err = type.verify(value);
  if (err) throw new Error(`test client built an invalid ${type.name}: ${err}`);
  return Buffer.from(type.encode(type.fromObject(value)).finish());
}

function decodeAny(any: Plain): DecodedAny {
  const decoded = decodeMessage(any.type_url, any.value);
  const name = (decoded.name ?? decoded.cluster_name ?? '') as string;
  return { type_url: any.type_url, value: Buffer.from(any.value), name, decoded };
}

export function decodeSotwResponse(raw: Buffer): SotwResponse {
  const T = DiscoveryResponse();
  const o = T.toObject(T.decode(raw), { bytes: Buffer, defaults: true, arrays: true }) as Plain;
  return { version_info: o.version_info, type_url: o.type_url, nonce: o.nonce, resources: o.resources.map(decodeAny), control_plane: o.control_plane ?? undefined, raw };
}

export function decodeDeltaResponse(raw: Buffer): DeltaResponse {
  const T = DeltaDiscoveryResponse();
  const o = T.toObject(T.decode(raw), { bytes: Buffer, defaults: true, arrays: true }) as Plain;
  return {
    system_version_info: o.system_version_info, type_url: o.type_url, nonce: o.nonce,
    resources: o.resources.map((r: Plain) => ({ name: r.name, version: r.version, resource: decodeAny(r.resource) })),
    removed_resources: o.removed_resources, raw,
  };
}

/** A queue of messages from a stream, with timeouts and the final status. */
class Inbox<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: (v: T) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  readonly status: Promise<grpc.StatusObject>;
  private resolveStatus!: (s: grpc.StatusObject) => void;

  constructor(call: grpc.ClientDuplexStream<Buffer, Buffer>, decode: (b: Buffer) => T) {
    this.status = new Promise((resolve) => (this.resolveStatus = resolve));
    call.on('data', (b: Buffer) => {
      const item = decode(b);
      if (this.waiter) { const w = this.waiter; this.waiter = undefined; w.resolve(item); } else this.items.push(item);
    });
    call.on('status', (s: grpc.StatusObject) => {
      this.resolveStatus(s);
      this.fail(new Error(`stream ended with ${grpc.status[s.code]}: ${s.details}`));
    });
    call.on('error', (e: Error) => this.fail(e));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    if (this.waiter) { const w = this.waiter; this.waiter = undefined; w.reject(e); }
  }

  next(timeoutMs: number): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiter = undefined; reject(new Error(`no response within ${timeoutMs} ms`)); }, timeoutMs);
      this.waiter = {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
    });
  }

  get buffered(): number {
    return this.items.length;
  }
}

abstract class BaseStream<T> {
  protected readonly inbox: Inbox<T>;
  private nodeSent = false;

  constructor(protected readonly call: grpc.ClientDuplexStream<Buffer, Buffer>, protected readonly node: Node | undefined, decode: (b: Buffer) => T) {
    this.inbox = new Inbox(call, decode);
  }

  /** Resolves with the stream's final status. */
  get status(): Promise<grpc.StatusObject> {
    return this.inbox.status;
  }

  next(timeoutMs = 5000): Promise<T> {
    return this.inbox.next(timeoutMs);
  }

  /** Resolves if no response arrives within `ms`; rejects with what arrived otherwise. */
  async expectSilence(ms = 200): Promise<void> {
    try {
      const got = await this.inbox.next(ms);
      throw Object.assign(new Error('expected no response, got one'), { got });
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('no response within')) return;
      throw err;
    }
  }

  cancel(): void {
    this.call.cancel();
  }

  /** Stops reading, as a stuck proxy does: grpc-js stops taking messages and HTTP/2 flow control stops the server. */
  pause(): void {
    this.call.pause();
  }

  resume(): void {
    this.call.resume();
  }

  /** Half-close, as a client that is done. */
  end(): void {
    this.call.end();
  }

  /** node on the first request only, as Envoy does. */
  protected withNode(message: Plain): Plain {
    if (this.nodeSent || !this.node || 'node' in message) return message;
    this.nodeSent = true;
    return { ...message, node: toNodeMessage(this.node) };
  }

  protected write(bytes: Buffer): void {
    this.call.write(bytes);
  }
}

function toNodeMessage(node: Node): Plain {
  const message: Plain = { id: node.id, cluster: node.cluster ?? 'test', user_agent_name: 'meshd-test-client', user_agent_version: '1.0' };
  if (node.metadata) message.metadata = { fields: Object.fromEntries(Object.entries(node.metadata).map(([k, v]) => [k, { stringValue: String(v) }])) };
  return message;
}

export class SotwStream extends BaseStream<SotwResponse> {
  private readonly perType = new Map<string, { names: string[]; version: string; nonce: string }>();

  constructor(call: grpc.ClientDuplexStream<Buffer, Buffer>, node: Node | undefined) {
    super(call, node, decodeSotwResponse);
  }

  private type(typeUrl: string) {
    let s = this.perType.get(typeUrl);
    if (!s) this.perType.set(typeUrl, (s = { names: [], version: '', nonce: '' }));
    return s;
  }

  /** (Re)subscribes: the full list of names, with the last accepted version and nonce, as Envoy does. */
  subscribe(typeUrl: string, names: string[]): void {
    const s = this.type(typeUrl);
    s.names = names;
    this.send({ type_url: typeUrl, resource_names: names, version_info: s.version, response_nonce: s.nonce });
  }

  ack(response: SotwResponse): void {
    const s = this.type(response.type_url);
    s.version = response.version_info;
    s.nonce = response.nonce;
    this.send({ type_url: response.type_url, resource_names: s.names, version_info: s.version, response_nonce: s.nonce });
  }

  /** NACK: error_detail set, version_info = the last version accepted (grpc-js-xds sends code 14). */
  nack(response: SotwResponse, message: string): void {
    const s = this.type(response.type_url);
    s.nonce = response.nonce;
    this.send({ type_url: response.type_url, resource_names: s.names, version_info: s.version, response_nonce: s.nonce, error_detail: { code: 14, message } });
  }

  /** A raw DiscoveryRequest (snake_case). node is added on the stream's first message. */
  send(request: Plain): void {
    this.write(encode(DiscoveryRequest(), this.withNode(request)));
  }
}

export class DeltaStream extends BaseStream<DeltaResponse> {
  constructor(call: grpc.ClientDuplexStream<Buffer, Buffer>, node: Node | undefined) {
    super(call, node, decodeDeltaResponse);
  }

  subscribe(typeUrl: string, names: string[], initialResourceVersions?: Record<string, string>): void {
    this.send({ type_url: typeUrl, resource_names_subscribe: names, initial_resource_versions: initialResourceVersions ?? {} });
  }

  unsubscribe(typeUrl: string, names: string[]): void {
    this.send({ type_url: typeUrl, resource_names_unsubscribe: names });
  }

  ack(response: DeltaResponse): void {
    this.send({ type_url: response.type_url, response_nonce: response.nonce });
  }

  nack(response: DeltaResponse, message: string): void {
    this.send({ type_url: response.type_url, response_nonce: response.nonce, error_detail: { code: 14, message } });
  }

  send(request: Plain): void {
    this.write(encode(DeltaDiscoveryRequest(), this.withNode(request)));
  }
}

const identity = (b: Buffer): Buffer => b;

export class XdsTestClient {
  readonly client: grpc.Client;

  constructor(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}) {
    this.client = new grpc.Client(address, credentials, {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      ...options,
    });
  }

  sotw(service: ServiceName, opts: { node?: Node; metadata?: Record<string, string> } = {}): SotwStream {
    const s = SERVICES[service];
    const call = this.client.makeBidiStreamRequest(`/${s.service}/${s.stream}`, identity, identity, toMetadata(opts.metadata));
    return new SotwStream(call, opts.node);
  }

  delta(service: ServiceName, opts: { node?: Node; metadata?: Record<string, string> } = {}): DeltaStream {
    const s = SERVICES[service];
    const call = this.client.makeBidiStreamRequest(`/${s.service}/${s.delta}`, identity, identity, toMetadata(opts.metadata));
    return new DeltaStream(call, opts.node);
  }

  /** Fetch* (unary). Rejects with the grpc ServiceError on a status. */
  fetch(service: ServiceName, request: Plain, metadata?: Record<string, string>): Promise<SotwResponse> {
    const s = SERVICES[service];
    if (!s.fetch) throw new Error(`${service} has no Fetch method`);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(`/${s.service}/${s.fetch}`, (r: Plain) => encode(DiscoveryRequest(), r), identity, request, toMetadata(metadata),
        (err: grpc.ServiceError | null, value?: Buffer) => (err ? reject(err) : resolve(decodeSotwResponse(value!))));
    });
  }

  /** A bidi stream that sends whatever bytes it is given (for malformed-input tests). */
  rawStream(service: ServiceName, metadata?: Record<string, string>): grpc.ClientDuplexStream<Buffer, Buffer> {
    const s = SERVICES[service];
    return this.client.makeBidiStreamRequest(`/${s.service}/${s.stream}`, identity, identity, toMetadata(metadata));
  }

  close(): void {
    this.client.close();
  }
}

function toMetadata(values: Record<string, string> | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(values ?? {})) md.set(k, v);
  return md;
}
