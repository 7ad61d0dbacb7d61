import { createResource, resourceFromAny } from '../../../src/xds/core/resource.js';
import type { GenerateRequest, Generator, ProxyInfo, Resource } from '../../../src/xds/core/types.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

/** A real Envoy message of each type whose content is one controllable string. */
export function messageFor(typeUrl: string, name: string, content: string): Record<string, unknown> {
  switch (typeUrl) {
    case TypeUrl.Secret: return { name, generic_secret: { secret: { inline_string: content } } };
    case TypeUrl.Listener: return { name, stat_prefix: content };
    case TypeUrl.Cluster: return { name, alt_stat_name: content };
    case TypeUrl.Route: return { name, virtual_hosts: [{ name: content, domains: ['*'] }] };
    case TypeUrl.Endpoint: return { cluster_name: name, endpoints: [{ locality: { zone: content } }] };
    default: throw new Error(`no test message for ${typeUrl}`);
  }
}

/** The controllable string back from a decoded resource (see messageFor). */
export function contentOf(typeUrl: string, decoded: Record<string, any>): string {
  switch (typeUrl) {
    case TypeUrl.Secret: return decoded.generic_secret.secret.inline_string;
    case TypeUrl.Listener: return decoded.stat_prefix;
    case TypeUrl.Cluster: return decoded.alt_stat_name;
    case TypeUrl.Route: return decoded.virtual_hosts[0].name;
    case TypeUrl.Endpoint: return decoded.endpoints[0].locality.zone;
    default: throw new Error(`no test message for ${typeUrl}`);
  }
}

/**
 * A generator with content the test sets: resources visible to every proxy, or to one
 * proxy id only. It records every call and can be told to throw.
 */
export class TestGenerator implements Generator {
  readonly calls: Array<{ proxy: string; names: string[] | '*' }> = [];
  failWith: Error | undefined;
  private readonly shared = new Map<string, Resource>();
  private readonly perProxy = new Map<string, Map<string, Resource>>();

  constructor(readonly typeUrl: string) {}

  /** Sets (or replaces) a resource; returns it (the same object is shared by every proxy that gets it). */
  set(name: string, content: string, proxyId?: string): Resource {
    return this.put(createResource(this.typeUrl, name, messageFor(this.typeUrl, name, content)), proxyId);
  }

  /** Sets a resource from raw google.protobuf.Any bytes. */
  setRaw(name: string, anyBytes: Uint8Array, proxyId?: string): Resource {
    return this.put(resourceFromAny(name, anyBytes), proxyId);
  }

  delete(name: string, proxyId?: string): void {
    (proxyId ? this.perProxy.get(proxyId) : this.shared)?.delete(name);
  }

  generate(proxy: ProxyInfo, request: GenerateRequest): Resource[] {
    this.calls.push({ proxy: proxy.id, names: request.names ? [...request.names] : '*' });
    if (this.failWith) throw this.failWith;
    const all = new Map(this.shared);
    for (const [name, r] of this.perProxy.get(proxy.id) ?? []) all.set(name, r);
    const names = request.names;
    return [...all.values()].filter((r) => !names || names.has(r.name));
  }

  callsFor(proxyId: string): number {
    return this.calls.filter((c) => c.proxy === proxyId).length;
  }

  private put(resource: Resource, proxyId?: string): Resource {
    if (proxyId) {
      let m = this.perProxy.get(proxyId);
      if (!m) this.perProxy.set(proxyId, (m = new Map()));
      m.set(resource.name, resource);
    } else {
      this.shared.set(resource.name, resource);
    }
    return resource;
  }
}
