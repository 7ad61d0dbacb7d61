import { hash } from 'node:crypto';
import { encodeAny } from '../../envoy/protos.js';
import type { MessageOf } from '../../envoy/resource-types.js';
import type { Resource } from './types.js';

/**
 * Resources are versioned one by one by their content (java-control-plane#89 shows why: one global
 * version re-sends everything on every change).
 * The version is a hash of the encoded google.protobuf.Any, so equal bytes give an equal
 * version on every stream, every replica and across restarts.
 */
export function contentVersion(body: Uint8Array): string {
  return shortDigest(body);
}

/**
 * The first 8 bytes of a SHA-256, as 16 hex digits. Made from the digest's bytes rather than
 * by slicing its 64-digit hex: V8 makes a slice that long a view that keeps the whole parent
 * string alive, and every stream keeps a few versions.
 */
export function shortDigest(data: string | Uint8Array): string {
  return hash('sha256', data, 'buffer').toString('hex', 0, 8);
}

/** Encodes `value` (snake_case fields, as Envoy's docs spell them) once, as an Any of `typeUrl`. */
export function createResource<U extends string>(typeUrl: U, name: string, value: MessageOf<U>): Resource {
  const body = encodeAny(typeUrl, value);
  return { name, version: contentVersion(body), body };
}

/** Wraps bytes that are already a serialised google.protobuf.Any. */
export function resourceFromAny(name: string, body: Uint8Array): Resource {
  return { name, version: contentVersion(body), body };
}

/**
 * Shares one Resource object (and so one byte buffer) between every proxy that gets the
 * same content: 10,000 sidecars with an identical cluster hold one copy of its bytes.
 * Entries are weak, so content nobody references any more is collected.
 */
export class ResourceInterner {
  private readonly entries = new Map<string, WeakRef<Resource>>();
  private readonly registry = new FinalizationRegistry<string>((key) => {
    const ref = this.entries.get(key);
    if (ref && ref.deref() === undefined) this.entries.delete(key);
  });

  intern(resource: Resource): Resource {
    const key = `${resource.name}\u0000${resource.version}`;
    const existing = this.entries.get(key)?.deref();
    if (existing) return existing;
    this.entries.set(key, new WeakRef(resource));
    this.registry.register(resource, key);
    return resource;
  }

  /** createResource, then intern. */
  create(typeUrl: string, name: string, value: Record<string, unknown>): Resource {
    return this.intern(createResource(typeUrl, name, value));
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * The version of a set of resources as the client holds it: a hash over the sorted
 * (name, version) pairs. Used as SotW version_info and delta system_version_info.
 *
 * Why a content hash and not a counter: the same set gets the same version on every
 * stream, so the debug view compares proxies at a glance; a NACKed set can be recognised
 * when a later push would produce it again (xds_protocol "ACK and NACK": never resend
 * rejected content); and nothing has to be persisted or coordinated between replicas.
 * A reconnecting client that echoes a version we computed elsewhere is still answered
 * (xds_protocol: always answer the first request), so a matching string never suppresses a send.
 */
export function viewVersion(view: ReadonlyMap<string, { readonly version: string } | string>): string {
  if (view.size === 0) return 'empty';
  const names = [...view.keys()].sort();
  // One string, one native one-shot hash: per-pair update() calls cost more than the hashing
  // itself on a listener set of hundreds of names pushed to thousands of streams.
  let text = '';
  for (const name of names) {
    const entry = view.get(name)!;
    text += `${name}\u0000${typeof entry === 'string' ? entry : entry.version}\n`;
  }
  return shortDigest(text);
}

/**
 * xds_protocol: a response never names a resource twice. Keeps the first of each name and reports
 * the rest, which is a generator bug worth an error log.
 */
export function uniqueByName(resources: readonly Resource[]): { unique: Resource[]; duplicates: string[] } {
  const seen = new Set<string>();
  const unique: Resource[] = [];
  const duplicates: string[] = [];
  for (const r of resources) {
    if (seen.has(r.name)) duplicates.push(r.name);
    else { seen.add(r.name); unique.push(r); }
  }
  return { unique, duplicates };
}
