import { createRequire } from 'node:module';
import { lookupType } from '../../../src/envoy/protos.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';
import type { Resource } from '../../../src/xds/core/types.js';

/**
 * grpc-js-xds 1.14.1's own resource validators, called in-process: what its XdsClient runs on
 * every resource before it ACKs or NACKs (xds-resource-type/*.js `decode`). A fast judge for
 * generator tests; the process tests check the same with real ADS streams.
 */
const require = createRequire(import.meta.url);
interface Decoder { decode(context: unknown, resource: { type_url: string; value: Buffer }): { name: string; error?: string; value?: unknown } }
const load = (file: string, cls: string): Decoder => (require(`@grpc/grpc-js-xds/build/src/xds-resource-type/${file}`)[cls] as { get(): Decoder }).get();

let registered = false;
function decoders(): Record<string, Decoder> {
  if (!registered) {
    // As the workloads run it: grpc-js-xds 1.14 validates (rather than refuses) the RBAC HTTP
    // filter only with this set, and reads it when first loaded.
    process.env.GRPC_XDS_EXPERIMENTAL_RBAC = 'true';
    // The router and RBAC HTTP filters are validated through the registry register() fills.
    (require('@grpc/grpc-js-xds') as { register(): void }).register();
    registered = true;
  }
  return {
    [TypeUrl.Listener]: load('listener-resource-type.js', 'ListenerResourceType'),
    [TypeUrl.Route]: load('route-config-resource-type.js', 'RouteConfigurationResourceType'),
    [TypeUrl.Cluster]: load('cluster-resource-type.js', 'ClusterResourceType'),
    [TypeUrl.Endpoint]: load('endpoint-resource-type.js', 'EndpointResourceType'),
  };
}

const context = {
  // As `meshd grpc-bootstrap` writes it: one provider instance, "default".
  bootstrap: { certificateProviders: { default: { pluginName: 'file_watcher', config: {} } } },
  server: { serverUri: 'unix:///agent/xds.sock', channelCreds: [{ type: 'insecure' }], serverFeatures: ['xds_v3'] },
};

/** grpc-js-xds's NACK message for this resource, or undefined when it would ACK it. */
export function grpcRejects(resource: Resource): string | undefined {
  const any = lookupType('google.protobuf.Any');
  const decoded = any.toObject(any.decode(resource.body), { bytes: Buffer }) as { type_url: string; value: Buffer };
  const decoder = decoders()[decoded.type_url];
  if (decoder === undefined) return `no grpc-js-xds decoder for ${decoded.type_url}`;
  try {
    const r = decoder.decode(context, decoded);
    if (r.error !== undefined) return r.error;
    if (r.name !== resource.name) return `grpc-js-xds reads the name as ${r.name}, meshd sent ${resource.name}`;
    return undefined;
  } catch (e) {
    return `threw: ${(e as Error).message}`;
  }
}
