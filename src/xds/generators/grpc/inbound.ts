import type { WorkloadEntry } from '../../../config/model.js';
import { ExtensionName, ExtensionType } from '../../../envoy/extension-types.js';
import type { FilterChain, Listener, Packed } from '../../../envoy/messages.js';
import type { MeshIndex } from '../../../mesh/mesh-index.js';
import { grpcRbacFilters } from './authz.js';
import { grpcInboundTls } from './inbound-mode.js';
import { inboundListenerName, isUnspecifiedAddress, type InboundListenerName } from './names.js';
import { grpcDownstreamTls } from './tls.js';

/**
 * The server listener of an XdsServer (gRFC A36), shaped as grpc-js-xds 1.14.1 accepts it
 * (reference §2, §4, §6) and as Istio builds it (lds.go buildInboundListeners):
 *
 * - exactly one chain, in `filter_chains` (never `default_filter_chain`: a live switch between the
 *   two kills the server), with NO filter_chain_match (a present match without
 *   transport_protocol "raw_buffer" matches nothing; two match-less chains crash the server);
 * - no listener_filters, no use_original_dst (NACKed);
 * - one HTTP connection manager with an inline route config: domains *, prefix /,
 *   non_forwarding_action (a `route` action fails every call with "Routing error"); router last;
 * - the TLS mode is part of the HCM bytes (stat_prefix and route config name): grpc-js-xds 1.14.1
 *   compares filter chains with an inverted null test on transport_socket, so an update that
 *   changes only the transport socket is ignored (mTLS→plaintext) or throws and kills the process
 *   (plaintext→mTLS). Changing the HCM too makes every mode change a real chain change.
 */
export function grpcServerListener(index: MeshIndex, workload: WorkloadEntry, requested: InboundListenerName): Listener {
  const key = `grpc-lds-in:${workload.meta.namespace}/${workload.meta.name}:${requested.ip}:${requested.port}`;
  return index.cached(key, () => {
    const tls = grpcInboundTls(index, workload.meta.namespace, workload.spec.labels, requested.port);
    const kind = tls.mtls ? 'mtls' : 'plaintext';
    const tag = `inbound|${requested.port}|${kind}`;
    const hcm: Packed<typeof ExtensionType.HttpConnectionManager> = {
      '@type': ExtensionType.HttpConnectionManager,
      stat_prefix: tag,
      route_config: {
        name: tag,
        virtual_hosts: [{
          name: `inbound|${requested.port}`,
          domains: ['*'],
          routes: [{ match: { prefix: '/' }, non_forwarding_action: {} }],
        }],
      },
      // RBAC (A41) before the router, which gRPC requires last.
      http_filters: [...grpcRbacFilters(index, workload), { name: ExtensionName.Router, typed_config: { '@type': ExtensionType.Router } }],
    };
    const chain: FilterChain = {
      name: `inbound-${kind}`,
      filters: [{ name: ExtensionName.HttpConnectionManager, typed_config: hcm }],
    };
    if (tls.mtls) chain.transport_socket = grpcDownstreamTls();
    return {
      name: inboundListenerName(requested.ip, requested.port),
      address: { socket_address: { address: requested.ip, port_value: requested.port } },
      filter_chains: [chain],
    };
  });
}

/** The ports a workload may serve: its WorkloadEntry ports and the workload ports its services deliver to. */
export function grpcServerPorts(index: MeshIndex, workload: WorkloadEntry): ReadonlySet<number> {
  return index.cached(`grpc-ports:${workload.meta.namespace}/${workload.meta.name}`, () => new Set<number>([
    ...Object.values(workload.spec.ports),
    ...index.inboundPorts(workload).ports.map((p) => p.workloadPort),
  ]));
}

/**
 * A requested server listener is served when it names the workload's own address (or an
 * unspecified address the server bound) and one of its ports; anything else stays absent, and the
 * XdsServer does not serve on it (A36), rather than getting another workload's policy.
 */
export function servesInbound(index: MeshIndex, workload: WorkloadEntry, requested: InboundListenerName): boolean {
  const addressOk = requested.ip === workload.spec.address || isUnspecifiedAddress(requested.ip);
  return addressOk && grpcServerPorts(index, workload).has(requested.port);
}

/** Every server listener of a workload on its own address (for wildcard requests and debugging). */
export function allServerListenerNames(index: MeshIndex, workload: WorkloadEntry): InboundListenerName[] {
  if (workload.spec.address === '') return [];
  return [...grpcServerPorts(index, workload)].sort((a, b) => a - b).map((port) => ({ ip: workload.spec.address, port }));
}
