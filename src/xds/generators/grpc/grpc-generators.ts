import type { MeshSnapshot, WorkloadEntry } from '../../../config/model.js';
import { createResource } from '../../core/resource.js';
import type { GenerateRequest, Generator, ProxyInfo, Resource } from '../../core/types.js';
import type { MessageOf } from '../../../envoy/resource-types.js';
import { TypeUrl } from '../../../envoy/type-urls.js';
import { indexFor, type MeshIndex } from '../../../mesh/mesh-index.js';
import { nodeWorkloadRef } from '../../../mesh/node-identity.js';
import { allServerListenerNames, grpcServerListener, servesInbound } from './inbound.js';
import { inboundListenerName, parseInboundListenerName, parseTargetName } from './names.js';
import {
  allTargetNames, grpcApiListener, grpcCluster, grpcClusterLoadAssignment, grpcRouteConfig, grpcTargets, resolveTarget,
} from './outbound.js';

/**
 * The generator family for proxyless gRPC (node metadata GENERATOR=grpc; Istio's grpcgen),
 * selected by generator-dispatch.ts. gRPC subscribes by exact name and only to what it uses,
 * so every resource is built on request for the names asked; a wildcard request (debug tools)
 * gets the workload's server listeners and everything it may call.
 *
 * Unchanged resources keep identical bytes: each is built once per snapshot (MeshIndex.cached)
 * and encoded once per built object, and its version is a hash of those bytes. gRPC drains every
 * connection of a server listener on any change (reference §4), so byte stability matters.
 */
const encoded = new WeakMap<object, Resource>();

function encodeOnce<U extends string>(typeUrl: U, name: string, value: MessageOf<U>): Resource {
  let r = encoded.get(value);
  if (r === undefined) {
    r = createResource(typeUrl, name, value);
    encoded.set(value, r);
  }
  return r;
}

interface Context {
  index: MeshIndex;
  workload: WorkloadEntry;
}

function contextFor(snapshot: MeshSnapshot, proxy: ProxyInfo): Context | undefined {
  const ref = nodeWorkloadRef(proxy);
  if (ref === undefined) return undefined;
  const index = indexFor(snapshot);
  const workload = index.workload(ref.namespace, ref.name);
  // Admission refuses unknown workloads; one deleted later gets nothing (gRPC then stops serving).
  return workload === undefined ? undefined : { index, workload };
}

function listeners(ctx: Context, names: ReadonlySet<string> | undefined): Resource[] {
  const { index, workload } = ctx;
  const targets = grpcTargets(index, workload.meta.namespace);
  const wanted = names ?? new Set([
    ...allServerListenerNames(index, workload).map((n) => inboundListenerName(n.ip, n.port)),
    ...allTargetNames(targets),
  ]);
  const out: Resource[] = [];
  for (const name of wanted) {
    const inbound = parseInboundListenerName(name);
    if (inbound !== undefined) {
      if (servesInbound(index, workload, inbound)) out.push(encodeOnce(TypeUrl.Listener, name, grpcServerListener(index, workload, inbound)));
      continue;
    }
    const targetName = parseTargetName(name);
    const target = targetName && resolveTarget(targets, targetName);
    if (target !== undefined) out.push(encodeOnce(TypeUrl.Listener, name, grpcApiListener(index, name, target)));
  }
  return out;
}

function routes(ctx: Context, names: ReadonlySet<string> | undefined): Resource[] {
  const targets = [...grpcTargets(ctx.index, ctx.workload.meta.namespace).values()];
  return targets
    .filter((t) => names === undefined || names.has(t.routeName))
    .map((t) => encodeOnce(TypeUrl.Route, t.routeName, grpcRouteConfig(ctx.index, t)));
}

function clusters(ctx: Context, names: ReadonlySet<string> | undefined): Resource[] {
  const targets = grpcTargets(ctx.index, ctx.workload.meta.namespace);
  const picked = names === undefined ? [...targets.values()] : [...names].flatMap((n) => targets.get(n) ?? []);
  return picked.map((t) => encodeOnce(TypeUrl.Cluster, t.clusterName, grpcCluster(ctx.index, t)));
}

function endpoints(ctx: Context, names: ReadonlySet<string> | undefined): Resource[] {
  const targets = grpcTargets(ctx.index, ctx.workload.meta.namespace);
  const picked = names === undefined ? [...targets.values()] : [...names].flatMap((n) => targets.get(n) ?? []);
  return picked.map((t) => encodeOnce(TypeUrl.Endpoint, t.clusterName, grpcClusterLoadAssignment(ctx.index, t)));
}

const PARTS: ReadonlyArray<{ typeUrl: string; build: (ctx: Context, names: ReadonlySet<string> | undefined) => Resource[] }> = [
  { typeUrl: TypeUrl.Listener, build: listeners },
  { typeUrl: TypeUrl.Route, build: routes },
  { typeUrl: TypeUrl.Cluster, build: clusters },
  { typeUrl: TypeUrl.Endpoint, build: endpoints },
];

export function createGrpcGenerators(snapshot: () => MeshSnapshot): Generator[] {
  return PARTS.map(({ typeUrl, build }) => ({
    typeUrl,
    generate(proxy: ProxyInfo, request: GenerateRequest): Resource[] {
      const ctx = contextFor(snapshot(), proxy);
      return ctx === undefined ? [] : build(ctx, request.names);
    },
  }));
}
