/**
 * A Buffer view of the same bytes (no copy). protobufjs, structured clone and callers hand
 * over plain Uint8Arrays; Buffer's methods (toString, compare, utf8 reads) want a Buffer.
 */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
