import type { PortProtocol } from '../../config/model.js';
import type { AnyConfig, TypedExtension } from './envoy-shapes.js';
import { ExtensionName, ExtensionType } from '../../envoy/extension-types.js';
import { isHttp2Protocol } from './protocols.js';

/** HTTP/2 to the upstream for HTTP2/gRPC ports (Istio sets the same on inbound and outbound clusters). */
export function upstreamProtocolOptions(protocol: PortProtocol): Record<string, AnyConfig> | undefined {
  if (!isHttp2Protocol(protocol)) return undefined;
  return {
    [ExtensionName.HttpProtocolOptions]: {
      '@type': ExtensionType.HttpProtocolOptions,
      explicit_http_config: { http2_protocol_options: {} },
    },
  };
}

export function routerFilter(): TypedExtension {
  return { name: ExtensionName.Router, typed_config: { '@type': ExtensionType.Router } };
}
