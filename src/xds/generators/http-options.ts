import type { PortProtocol } from '../../config/model.js';
import { ExtensionName, ExtensionType } from '../../envoy/extension-types.js';
import type { HttpFilter, PackedAny } from '../../envoy/messages.js';
import { isHttp2Protocol } from '../../mesh/protocols.js';

/** HTTP/2 to the upstream for HTTP2/gRPC ports (Istio sets the same on inbound and outbound clusters). */
export function upstreamProtocolOptions(protocol: PortProtocol): Record<string, PackedAny> | undefined {
  if (!isHttp2Protocol(protocol)) return undefined;
  return {
    [ExtensionName.HttpProtocolOptions]: {
      '@type': ExtensionType.HttpProtocolOptions,
      explicit_http_config: { http2_protocol_options: {} },
    },
  };
}

export function routerFilter(): HttpFilter {
  return { name: ExtensionName.Router, typed_config: { '@type': ExtensionType.Router } };
}
