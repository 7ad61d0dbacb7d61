import type { status } from '@grpc/grpc-js';
import type { Identity } from '../../auth/identity.js';

/**
 * The seams of the discovery core.
 *
 * core ↔ generators: a generator turns (proxy, subscribed names) into resources for one
 * type URL. It never sees a stream, a nonce or gRPC. The core never knows what a
 * listener or a secret means.
 */

/** A connected proxy, as generators see it. Immutable for the life of a stream. */
export interface ProxyInfo {
  /** Envoy's node.id (meshd bootstrap writes sidecar~<ip>~<workload>.<ns>~<ns>.svc.<domain>). */
  id: string;
  /** node.cluster */
  cluster: string;
  /** node.metadata as plain JSON (google.protobuf.Struct decoded). */
  metadata: Record<string, unknown>;
  /** node.user_agent_name / user_agent_version or build version, when sent. */
  userAgent: string;
  /** The identity the proxy proved when the stream opened. */
  identity: Identity;
}

/**
 * One resource, encoded once. `body` is a serialised google.protobuf.Any; the same
 * bytes are shared by every stream that receives this resource.
 */
export interface Resource {
  readonly name: string;
  /** A content hash: equal bytes, equal version. */
  readonly version: string;
  readonly body: Uint8Array;
}

/** What a generator is asked for: explicit names, or every resource for a wildcard subscription. */
export interface GenerateRequest {
  /** undefined = wildcard (legacy empty list or "*"). */
  names: ReadonlySet<string> | undefined;
}

export interface Generator {
  readonly typeUrl: string;
  /**
   * Resources for this proxy. A subscribed name with no resource is simply absent
   * (delta reports it in removed_resources). Throw a GeneratorError to refuse.
   */
  generate(proxy: ProxyInfo, request: GenerateRequest): Promise<Resource[]> | Resource[];
}

/** A refusal with a gRPC status: PERMISSION_DENIED for a secret the identity may not have. */
export class GeneratorError extends Error {
  constructor(readonly code: status, message: string) {
    super(message);
  }
}

/**
 * What changed, so the core re-generates only for the affected proxies and types.
 * Omitted fields mean "all".
 */
export interface PushRequest {
  /** The types to regenerate: all when absent; a function picks them per proxy. */
  typeUrls?: readonly string[] | ((proxy: ProxyInfo) => readonly string[]);
  /** Proxy ids, or a predicate over connected proxies. */
  proxies?: ReadonlySet<string> | ((proxy: ProxyInfo) => boolean);
  /** For logs and pilot_push_triggers{type}: "config", "secret", "endpoint", "root-rotation", ... */
  reason: string;
}

/**
 * Admission when a stream opens: ties the node to its proven identity (and,
 * to its WorkloadEntry). Throws GeneratorError(PERMISSION_DENIED, …) to refuse the proxy.
 */
export type AdmitProxy = (proxy: ProxyInfo) => void | Promise<void>;
