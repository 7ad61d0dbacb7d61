/**
 * Bounds on what a client may send and on how much of it meshd repeats, in one place. A
 * client that goes over a request bound is refused with INVALID_ARGUMENT naming the limit;
 * text it supplied is cut to a fixed length wherever it reaches a log line or /debug.
 */

/**
 * node.id, node.cluster, node.user_agent_name and node.user_agent_version, in UTF-8 bytes.
 * Istio's node ids (`sidecar~<ip>~<pod>.<ns>~<ns>.svc.<domain>`) are under 256 characters in
 * practice; the longest Kubernetes names allow (a 253-character pod name, a 63-character
 * namespace twice, an IPv6 address) stay under 512.
 */
export const MAX_NODE_STRING_BYTES = 1024;

/**
 * node.metadata as encoded on the wire (the google.protobuf.Struct). Istio's sidecar metadata
 * is a few KB (labels, annotations, the proxy config); this is room for ten times that. Each
 * stream keeps its node's metadata for its life, so this bounds memory per stream, where
 * gRPC's 4 MB default receive size would let one stream pin megabytes.
 */
export const MAX_NODE_METADATA_BYTES = 64 * 1024;

/** Nesting of node.metadata (the Struct itself is depth 1). Istio's metadata nests maps a few levels (LABELS, PROXY_CONFIG). */
export const MAX_NODE_METADATA_DEPTH = 16;

/**
 * Values in node.metadata, counting every map entry and list element at any depth. Istio's
 * sidecar metadata is a few dozen keys plus labels, annotations and the proxy config: well
 * under a thousand. Decoded, each value is an object on the heap, so this, not the byte
 * size, bounds the memory a stream's metadata costs.
 */
export const MAX_NODE_METADATA_VALUES = 2000;

/** Client-supplied text (node ids, resource names, peers, user agents) in a log line or /debug. */
export const MAX_LOGGED_CHARS = 256;

/** A NACK's error_detail.message as stored for /debug/connections and logged: Envoy's first errors fit. */
export const MAX_NACK_MESSAGE_CHARS = 1024;

/** Examples given when one log line stands for many similar events (unknown names, say). */
export const MAX_LOGGED_EXAMPLES = 5;

/** Cuts text to `max` characters, saying how long it was, so hostile input cannot make a log line long. */
export function clip(text: string, max = MAX_LOGGED_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}
