/** The discovery core's public API: what the server composition, generators and adapters use. */
export { DiscoveryCore, type DiscoveryCoreOptions } from './discovery-core.js';
export type { CoreStream, OpenStreamOptions, StreamSink } from './connection.js';
export type { ConnectionStatus, TypeStatus, NackStatus, SyncStatus } from './connection-status.js';
export { GeneratorError, type Generator, type GenerateRequest, type Resource, type ProxyInfo, type PushRequest, type AdmitProxy } from './types.js';
export { createResource, resourceFromAny, contentVersion, viewVersion, ResourceInterner } from './resource.js';
export type { SotwRequest, DeltaRequest, XdsRequest, NodeInfo, ErrorDetail } from './requests.js';
export { DEFAULT_MAX_RESOURCE_NAMES } from './requests.js';
export { decodeSotwRequest, decodeDeltaRequest, encodeSotwResponse, encodeDeltaResponse } from './wire.js';
