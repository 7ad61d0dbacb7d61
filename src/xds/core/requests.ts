import { status } from '@grpc/grpc-js';
import { GeneratorError } from './types.js';
import { clip } from './limits.js';

/** node, as the first request of a stream carries it (xds_protocol), decoded to plain values. */
export interface NodeInfo {
  id: string;
  cluster: string;
  metadata: Record<string, unknown>;
  userAgent: string;
}

/** google.rpc.Status as a client sends it in a NACK. */
export interface ErrorDetail {
  code: number;
  message: string;
}

/** envoy.service.discovery.v3.DiscoveryRequest (state of the world). */
export interface SotwRequest {
  kind: 'sotw';
  typeUrl: string;
  versionInfo: string;
  resourceNames: string[];
  responseNonce: string;
  /** Present = NACK (xds_protocol: detect a NACK by the presence of error_detail). */
  errorDetail?: ErrorDetail;
  node?: NodeInfo;
}

/** envoy.service.discovery.v3.DeltaDiscoveryRequest (incremental). */
export interface DeltaRequest {
  kind: 'delta';
  typeUrl: string;
  subscribe: string[];
  unsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: ErrorDetail;
  node?: NodeInfo;
}

export type XdsRequest = SotwRequest | DeltaRequest;

/** Above this many names in one request the stream ends with RESOURCE_EXHAUSTED. */
export const DEFAULT_MAX_RESOURCE_NAMES = 10_000;

export interface RequestRules {
  /** The type a per-type stream (SDS, LDS, ...) serves; undefined on ADS. */
  streamTypeUrl?: string;
  /** Type URLs that have a generator. */
  served: ReadonlySet<string>;
  maxResourceNames: number;
}

/**
 * Checks a request before it touches any state and fills in the stream's type.
 * Throws a GeneratorError carrying the gRPC status that ends the stream.
 *
 * - ADS: every request names its type_url (xds_protocol, aggregated discovery); an empty one is
 *   INVALID_ARGUMENT, as go-control-plane answers.
 * - A per-type stream defaults an empty type_url to its own type (as go-control-plane does) and refuses any
 *   other type with INVALID_ARGUMENT.
 * - A type URL without a generator ends the stream with UNIMPLEMENTED naming the types
 *   meshd serves. Answering nothing (Istio's choice) would leave the client waiting for
 *   its initial_fetch_timeout with no hint; meshd writes the bootstraps its proxies use, so
 *   a request for another type is a misconfiguration better reported at once.
 * - More names than `maxResourceNames` in one request: RESOURCE_EXHAUSTED.
 */
export function checkRequest<R extends XdsRequest>(request: R, rules: RequestRules): R {
  let typeUrl = request.typeUrl;
  if (rules.streamTypeUrl !== undefined) {
    if (typeUrl === '') typeUrl = rules.streamTypeUrl;
    else if (typeUrl !== rules.streamTypeUrl) {
      throw new GeneratorError(status.INVALID_ARGUMENT,
        `this stream serves ${rules.streamTypeUrl} only; the request asks for type_url "${clip(typeUrl)}" (use the Aggregated Discovery Service to mix types)`);
    }
  } else if (typeUrl === '') {
    throw new GeneratorError(status.INVALID_ARGUMENT,
      'an Aggregated Discovery Service request must set type_url (for example type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret)');
  }
  if (!rules.served.has(typeUrl)) {
    throw new GeneratorError(status.UNIMPLEMENTED,
      `meshd serves no resources of type_url "${clip(typeUrl)}"; it serves ${[...rules.served].sort().join(', ') || 'none'}`);
  }
  const count = request.kind === 'sotw'
    ? request.resourceNames.length
    : Math.max(request.subscribe.length, request.unsubscribe.length, Object.keys(request.initialResourceVersions).length);
  if (count > rules.maxResourceNames) {
    throw new GeneratorError(status.RESOURCE_EXHAUSTED,
      `the request for ${typeUrl} names ${count} resources; meshd accepts at most ${rules.maxResourceNames} per request and per stream and type`);
  }
  return typeUrl === request.typeUrl ? request : { ...request, typeUrl };
}

