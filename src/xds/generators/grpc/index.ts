/** The proxyless gRPC generator family (GENERATOR=grpc). */
export { createGrpcGenerators } from './grpc-generators.js';
export { GRPC_SERVER_LISTENER_TEMPLATE, GRPC_INBOUND_LISTENER_PREFIX, inboundListenerName, parseInboundListenerName } from './names.js';
export { grpcInboundTls, type GrpcInboundTls } from './inbound-mode.js';
export { CERTIFICATE_PROVIDER_INSTANCE, IDENTITY_CERTIFICATE_NAME, ROOT_CERTIFICATE_NAME } from './tls.js';
