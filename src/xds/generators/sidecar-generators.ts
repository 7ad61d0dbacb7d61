import type { MeshSnapshot } from '../../config/model.js';
import type { GenerateRequest, Generator, ProxyInfo, Resource } from '../core/types.js';
import { encodeResource } from '../resource-encoder.js';
import { TypeUrl } from '../type-urls.js';
import { indexFor } from './mesh-index.js';
import { proxyConfigFromIndex, type ProxyConfig } from './proxy-config.js';
import { workloadRefForProxy } from './proxy-workload.js';

/**
 * The four xDS generators of Envoy sidecars (CDS, EDS, LDS, RDS). Each reads the current
 * snapshot through the getter, finds the proxy's WorkloadEntry, and encodes its part of
 * `buildProxyConfig`. Encoding is memoised on the built objects, which are themselves
 * memoised per snapshot: a cluster every sidecar sees is encoded once per snapshot however many
 * proxies ask, and the content-hash version makes an unchanged resource keep its version
 * across snapshots.
 */

type Part = 'clusters' | 'endpoints' | 'listeners' | 'routes';

const PARTS: ReadonlyArray<{ typeUrl: string; part: Part; nameOf: (o: Record<string, unknown>) => string }> = [
  { typeUrl: TypeUrl.Cluster, part: 'clusters', nameOf: (o) => o.name as string },
  { typeUrl: TypeUrl.Endpoint, part: 'endpoints', nameOf: (o) => o.cluster_name as string },
  { typeUrl: TypeUrl.Listener, part: 'listeners', nameOf: (o) => o.name as string },
  { typeUrl: TypeUrl.Route, part: 'routes', nameOf: (o) => o.name as string },
];

const encoded = new WeakMap<object, Resource>();

function encodeOnce(typeUrl: string, name: string, value: object): Resource {
  let r = encoded.get(value);
  if (r === undefined) {
    r = encodeResource(typeUrl, name, value as Record<string, unknown>);
    encoded.set(value, r);
  }
  return r;
}

function configFor(snapshot: MeshSnapshot, proxy: ProxyInfo): { config: ProxyConfig; key: string } | undefined {
  const ref = workloadRefForProxy(proxy);
  if (ref === undefined) return undefined;
  const index = indexFor(snapshot);
  const workload = index.workload(ref.namespace, ref.name);
  // Admission refuses unknown workloads; one deleted later simply gets no resources.
  if (workload === undefined) return undefined;
  return { config: proxyConfigFromIndex(index, workload), key: `${ref.namespace}/${ref.name}` };
}

export function createSidecarGenerators(snapshot: () => MeshSnapshot): Generator[] {
  return PARTS.map(({ typeUrl, part, nameOf }) => ({
    typeUrl,
    generate(proxy: ProxyInfo, request: GenerateRequest): Resource[] {
      const snap = snapshot();
      const found = configFor(snap, proxy);
      if (found === undefined) return [];
      const items = found.config[part] as ReadonlyArray<Record<string, unknown>>;
      const encodeAll = (): Resource[] => items.map((o) => encodeOnce(typeUrl, nameOf(o), o));
      if (request.names === undefined) {
        return indexFor(snap).cached(`resources:${typeUrl}:${found.key}`, encodeAll);
      }
      const names = request.names;
      return items.filter((o) => names.has(nameOf(o))).map((o) => encodeOnce(typeUrl, nameOf(o), o));
    },
  }));
}
