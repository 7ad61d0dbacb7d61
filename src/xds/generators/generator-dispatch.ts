import type { GenerateRequest, Generator, ProxyInfo } from '../core/types.js';

/**
 * Which generator family serves a proxy. Istio selects by node metadata GENERATOR
 * (`grpc` for proxyless gRPC, pilot/pkg/networking/grpcgen); everything else is an Envoy
 * sidecar.
 */
export type ProxyKind = 'sidecar' | 'grpc';

export function proxyKind(proxy: ProxyInfo): ProxyKind {
  return proxy.metadata.GENERATOR === 'grpc' ? 'grpc' : 'sidecar';
}

/**
 * One generator per type URL that hands each proxy to its family's generator. A family with
 * no generator for a type serves nothing of that type to its proxies.
 */
export function dispatchByProxyKind(families: Partial<Record<ProxyKind, readonly Generator[]>>): Generator[] {
  const typeUrls = new Set<string>();
  for (const list of Object.values(families)) for (const g of list ?? []) typeUrls.add(g.typeUrl);
  return [...typeUrls].map((typeUrl) => {
    const byKind = new Map<ProxyKind, Generator>();
    for (const [kind, list] of Object.entries(families) as [ProxyKind, readonly Generator[] | undefined][]) {
      const g = list?.find((x) => x.typeUrl === typeUrl);
      if (g !== undefined) byKind.set(kind, g);
    }
    return {
      typeUrl,
      generate(proxy: ProxyInfo, request: GenerateRequest) {
        const g = byKind.get(proxyKind(proxy));
        return g === undefined ? [] : g.generate(proxy, request);
      },
    };
  });
}
