import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { RESOURCE_TYPES } from '../../envoy/resource-types.js';
import { decodeDeltaRequest, decodeSotwRequest } from '../core/wire.js';
import type { DeltaRequest, SotwRequest } from '../core/requests.js';
import { RequestLimitError } from '../core/node-limits.js';

/**
 * The xDS gRPC services, described by hand rather than through @grpc/proto-loader: the
 * request side decodes with Envoy's protos (src/envoy/protos.ts, via core/wire.ts) and the
 * response side is the identity, because the core hands over a DiscoveryResponse that
 * is already encoded around each resource's shared bytes.
 */
export interface XdsServiceSpec {
  /** Fully qualified gRPC service name. */
  service: string;
  /** Short name for logs and the debug view. */
  short: string;
  /** The one type a per-type service serves; undefined for ADS. */
  typeUrl?: string;
  stream: string;
  delta: string;
  /** The unary Fetch* method (REST-like); ADS has none. */
  fetch?: string;
}

/** ADS, then one service per resource type (envoy/service/<type>/v3/<x>ds.proto). */
export const XDS_SERVICES: readonly XdsServiceSpec[] = [
  { service: 'envoy.service.discovery.v3.AggregatedDiscoveryService', short: 'ads', stream: 'StreamAggregatedResources', delta: 'DeltaAggregatedResources' },
  ...RESOURCE_TYPES.map(({ typeUrl, shortName, service }) => ({
    service: service.name, short: shortName, typeUrl, stream: `Stream${service.methods}`, delta: `Delta${service.methods}`, fetch: `Fetch${service.methods}`,
  })),
];

/** A request that did not decode, or went over a bound; the handler ends the call with INVALID_ARGUMENT. */
export interface MalformedRequest {
  kind: 'malformed';
  message: string;
}

/** grpc-js would answer a throwing deserializer with INTERNAL; a bad message, or one over a bound, is the client's error. */
function tolerant<Req>(decode: (b: Buffer) => Req, what: string): (b: Buffer) => Req | MalformedRequest {
  return (bytes) => {
    try {
      return decode(bytes);
    } catch (err) {
      if (err instanceof RequestLimitError) return { kind: 'malformed', message: err.message };
      return { kind: 'malformed', message: `the request is not a valid ${what}: ${err instanceof Error ? err.message : String(err)}` };
    }
  };
}

const passBytes = (value: Buffer): Buffer => value;
const notAClient = (): Buffer => {
  throw new Error('server-side method definition: requests are not serialised here');
};

function method<Req>(spec: XdsServiceSpec, name: string, requestStream: boolean, responseStream: boolean, decode: (b: Buffer) => Req): MethodDefinition<Req, Buffer> {
  return {
    path: `/${spec.service}/${name}`,
    originalName: name,
    requestStream,
    responseStream,
    requestSerialize: notAClient,
    requestDeserialize: decode,
    responseSerialize: passBytes,
    responseDeserialize: passBytes,
  };
}

export interface XdsServiceDefinition {
  spec: XdsServiceSpec;
  definition: ServiceDefinition;
}

/** grpc-js ServiceDefinitions for ADS, SDS, LDS, CDS, RDS and EDS. */
export function xdsServiceDefinitions(): XdsServiceDefinition[] {
  return XDS_SERVICES.map((spec) => {
    const sotw = tolerant(decodeSotwRequest, 'envoy.service.discovery.v3.DiscoveryRequest');
    const delta = tolerant(decodeDeltaRequest, 'envoy.service.discovery.v3.DeltaDiscoveryRequest');
    const definition: Record<string, MethodDefinition<SotwRequest | MalformedRequest, Buffer> | MethodDefinition<DeltaRequest | MalformedRequest, Buffer>> = {
      [spec.stream]: method(spec, spec.stream, true, true, sotw),
      [spec.delta]: method(spec, spec.delta, true, true, delta),
    };
    if (spec.fetch) definition[spec.fetch] = method(spec, spec.fetch, false, false, sotw);
    return { spec, definition: definition as unknown as ServiceDefinition };
  });
}
