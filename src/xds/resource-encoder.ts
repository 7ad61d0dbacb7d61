import { createHash } from 'node:crypto';
import { encodeAny } from './protos.js';
import type { Resource } from './core/types.js';

/**
 * Encodes a resource once: the google.protobuf.Any bytes every stream shares, and a
 * version derived from those bytes, so equal content always has an equal version.
 */
export function encodeResource(typeUrl: string, name: string, value: Record<string, unknown>): Resource {
  const body = encodeAny(typeUrl, value);
  return { name, version: contentVersion(body), body };
}

export function contentVersion(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url').slice(0, 16);
}
