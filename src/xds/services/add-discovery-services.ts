import type { Server, ServerDuplexStream, ServerUnaryCall, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js';
import type { SotwRequest, XdsRequest } from '../core/requests.js';
import { xdsServiceDefinitions, type MalformedRequest } from './definitions.js';
import { serveFetch, serveStream, type DiscoveryServiceDeps, type StreamSpec } from './stream-handler.js';
import { addGuardedService } from '../../common/guarded-service.js';
import { HandlerErrors } from '../../common/handler-errors.js';

export type { DiscoveryServiceDeps } from './stream-handler.js';

/**
 * Registers ADS, SDS, LDS, CDS, RDS and EDS (Stream*, Delta*, Fetch*) on a grpc-js
 * server. Each is a thin adapter over the one discovery core: a secret on SDS and a
 * secret on ADS take the same path. Every method is guarded (addGuardedService): an
 * unexpected error ends its call with INTERNAL, never the process.
 */
export function addDiscoveryServices(server: Server, given: DiscoveryServiceDeps): void {
  const errors = given.errors ?? new HandlerErrors({ logger: given.logger });
  const deps = { ...given, errors };
  for (const { spec, definition } of xdsServiceDefinitions()) {
    // One spec per method, shared by its calls (each stream keeps a reference for its life).
    const sotw: StreamSpec = { mode: 'sotw', service: spec.short, method: `/${spec.service}/${spec.stream}`, streamTypeUrl: spec.typeUrl };
    const delta: StreamSpec = { mode: 'delta', service: spec.short, method: `/${spec.service}/${spec.delta}`, streamTypeUrl: spec.typeUrl };
    const implementation: UntypedServiceImplementation = {
      [spec.stream]: (call: ServerDuplexStream<XdsRequest | MalformedRequest, Buffer>) => serveStream(call, sotw, deps),
      [spec.delta]: (call: ServerDuplexStream<XdsRequest | MalformedRequest, Buffer>) => serveStream(call, delta, deps),
    };
    if (spec.fetch) {
      const fetch: StreamSpec = { ...sotw, method: `/${spec.service}/${spec.fetch}` };
      implementation[spec.fetch] = (call: ServerUnaryCall<SotwRequest | MalformedRequest, Buffer>, callback: sendUnaryData<Buffer>) =>
        serveFetch(call, callback, fetch, deps);
    }
    addGuardedService(server, definition, implementation, errors);
  }
}
