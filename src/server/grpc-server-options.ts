import type { ServerOptions } from '@grpc/grpc-js';

/**
 * The options of meshd's gRPC servers (15012 TLS, 15010 plaintext). bench/lib/bare-server.ts
 * uses the same object, so the bench's ceiling is the same grpc-js configuration.
 *
 * - max_concurrent_streams 100,000 (istiod's value): the proxies of a node agent, or one
 *   Envoy's SDS streams, share a connection; a bound, but one no real client reaches.
 * - keepalive: a proxy that vanished (a VM gone, a NAT dropped) is found in ~40 s, and its
 *   streams and state are let go.
 * - max_connection_age: connections are recycled every 30 minutes (as istiod does), so a
 *   fleet rebalances across replicas; Envoy reconnects and gets the same state back.
 * - channelz off: meshd serves no channelz service, and grpc-js's channelz bookkeeping is a
 *   tracker object with five closures per call and a Date.now() per message, kept for the
 *   life of every xDS stream.
 */
export const GRPC_SERVER_OPTIONS: ServerOptions = {
  'grpc.max_concurrent_streams': 100_000,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.max_connection_age_ms': 30 * 60_000,
  'grpc.enable_channelz': 0,
};
