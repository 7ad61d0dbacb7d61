import type { MeshSnapshot, PortProtocol, ServiceEntry, ServicePort, WorkloadEntry } from '../config/model.js';
import { endpointPort, servicesForWorkload, workloadKey, workloadsForService, type ServiceEndpoint as RegistryEndpoint } from './registry.js';
import { modeForPort, resolvePeerAuthentication, type EffectiveMode, type EffectiveMtls } from './peer-authentication.js';
import { workloadLabels } from './labels.js';
import { isHttpProtocol } from './protocols.js';
import { isVisibleTo } from './visibility.js';
import { compareByCreation } from './creation-order.js';

/**
 * The one index of a MeshSnapshot that the generators, push planning, `meshd check` and telemetry
 * share: derived, memoised views of the immutable snapshot. Anything computed from it (effective
 * modes, endpoint lists, whole resources) is computed once per snapshot and the same object is
 * returned afterwards; the generators' encoding cache keys on those objects, so identical
 * resources are encoded once.
 *
 * Who owns a host, and which service a workload port belongs to, is decided here only, with
 * istiod's rule: the oldest ServiceEntry wins. istiod sorts services by creation time
 * (pilot/pkg/model/push_context.go SortServicesByCreationTime, used by initServiceRegistry) and
 * keeps the first service for a host in a proxy's scope (pilot/pkg/model/sidecar.go
 * appendSidecarServices: "we want to pick the first Service, which is the oldest"). Two
 * ServiceEntries created in the same second (or without timestamps) are ordered by
 * src/mesh/creation-order.ts, name then namespace; istiod orders such services by host name,
 * namespace, then the ServiceEntry's name (pilot/pkg/serviceregistry/serviceentry/controller.go
 * sortServicesByCreationTime), which for two entries of one host puts the namespace first.
 *
 * `indexFor(snapshot)` keeps one index per snapshot in a WeakMap: an old snapshot and
 * everything derived from it are collected once nothing references the snapshot.
 */

/** One outbound cluster's worth of service: a host of a ServiceEntry and one of its ports. */
export interface ServiceTarget {
  entry: ServiceEntry;
  host: string;
  port: ServicePort;
}

/** A port the workload serves through its sidecar, keyed by the workload (target) port. */
export interface InboundPort {
  workloadPort: number;
  protocol: PortProtocol;
  http: boolean;
  /** The service ports delivering to it, oldest ServiceEntry first (the first decides the protocol). */
  services: ServiceTarget[];
}

const indexes = new WeakMap<MeshSnapshot, MeshIndex>();

export function indexFor(snapshot: MeshSnapshot): MeshIndex {
  let index = indexes.get(snapshot);
  if (index === undefined) {
    index = new MeshIndex(snapshot);
    indexes.set(snapshot, index);
  }
  return index;
}

export class MeshIndex {
  private readonly memo = new Map<string, unknown>();
  readonly entries: readonly ServiceEntry[];
  private readonly workloadsByKey: ReadonlyMap<string, WorkloadEntry>;

  /** Every ServiceEntry declaring a host, oldest first. */
  private readonly declaring = new Map<string, ServiceEntry[]>();

  constructor(readonly snapshot: MeshSnapshot) {
    this.entries = [...snapshot.serviceEntries].sort(compareByCreation);
    this.workloadsByKey = new Map(snapshot.workloadEntries.map((w) => [workloadKey(w.meta.namespace, w.meta.name), w]));
    for (const entry of this.entries) {
      for (const host of entry.hosts) {
        const list = this.declaring.get(host);
        if (list === undefined) this.declaring.set(host, [entry]);
        else if (!list.includes(entry)) list.push(entry);
      }
    }
  }

  /** Memoises `build` under `key` for the life of this snapshot. */
  cached<T>(key: string, build: () => T): T {
    if (this.memo.has(key)) return this.memo.get(key) as T;
    const value = build();
    this.memo.set(key, value);
    return value;
  }

  workload(namespace: string, name: string): WorkloadEntry | undefined {
    return this.workloadsByKey.get(workloadKey(namespace, name));
  }

  /** The WorkloadEntries (or inline endpoints) behind a ServiceEntry, as the registry selects them. */
  workloadsOf(entry: ServiceEntry): readonly RegistryEndpoint[] {
    return this.cached(`wl-of:${entry.meta.namespace}/${entry.meta.name}`, () => workloadsForService(this.snapshot, entry));
  }

  servicesOf(workload: WorkloadEntry): readonly ServiceEntry[] {
    return this.cached(`svc-of:${workload.meta.namespace}/${workload.meta.name}`, () =>
      [...servicesForWorkload(this.snapshot, workload)].sort(compareByCreation),
    );
  }

  /** Effective PeerAuthentication for any workload (or endpoint) by namespace and labels. */
  mtls(namespace: string, labels: Readonly<Record<string, string>>): EffectiveMtls {
    const key = `mtls:${namespace}:${JSON.stringify(Object.entries(labels).sort())}`;
    return this.cached(key, () =>
      resolvePeerAuthentication(this.snapshot.peerAuthentications, this.snapshot.mesh.rootNamespace, { namespace, labels }),
    );
  }

  /** The mode a port of any workload (or endpoint) serves with: its port-level override, else its mode. */
  portMtls(namespace: string, labels: Readonly<Record<string, string>>, port: number): { mode: EffectiveMode; decidedBy?: string } {
    return modeForPort(this.mtls(namespace, labels), port);
  }

  /** The mode a WorkloadEntry's workload port serves with, as its inbound listener is built. */
  workloadPortMtls(workload: WorkloadEntry, workloadPort: number): { mode: EffectiveMode; decidedBy?: string } {
    return this.portMtls(workload.meta.namespace, workloadLabels(workload), workloadPort);
  }

  /**
   * Istio's BestEffortInferServiceMTLSMode (pilot/pkg/model/push_context.go): the
   * namespace (else mesh) mode of the service's namespace, which decides whether clients set up
   * auto mTLS for it at all.
   */
  namespaceMtls(namespace: string): EffectiveMtls {
    return this.mtls(namespace, {});
  }

  /**
   * The ServiceEntry a host belongs to for a proxy in `namespace`: the oldest that declares it and
   * is exported to that namespace. Without a namespace, or when no ServiceEntry declaring the host
   * is visible there, the oldest that declares it at all.
   */
  hostOwner(host: string, namespace?: string): ServiceEntry | undefined {
    const list = this.declaring.get(host);
    if (list === undefined) return undefined;
    if (namespace !== undefined) {
      for (const entry of list) if (isVisibleTo(entry, namespace)) return entry;
    }
    return list[0];
  }

  /**
   * Every service host and port a proxy in `namespace` sees (exportTo), oldest ServiceEntry
   * first; a host that two visible ServiceEntries declare goes to its hostOwner, with a warning.
   */
  visibleTargets(namespace: string): { targets: readonly ServiceTarget[]; warnings: readonly string[] } {
    return this.cached(`visible:${namespace}`, () => {
      const targets: ServiceTarget[] = [];
      const warnings: string[] = [];
      for (const entry of this.entries) {
        if (!isVisibleTo(entry, namespace)) continue;
        for (const host of entry.hosts) {
          const owner = this.hostOwner(host, namespace)!;
          if (owner !== entry) {
            warnings.push(
              `host ${host} is declared by ServiceEntry ${owner.meta.namespace}/${owner.meta.name} and ` +
                `ServiceEntry ${entry.meta.namespace}/${entry.meta.name}; the oldest (${owner.meta.namespace}/${owner.meta.name}) is used`,
            );
            continue;
          }
          for (const port of entry.ports) targets.push({ entry, host, port });
        }
      }
      return { targets, warnings };
    });
  }

  /**
   * The ports a workload serves: every port of every ServiceEntry selecting it, by workload
   * port. Two services on one workload port: the oldest decides the protocol (Istio keeps the
   * oldest Service on a conflicting target port).
   */
  inboundPorts(workload: WorkloadEntry): { ports: readonly InboundPort[]; warnings: readonly string[] } {
    return this.cached(`inbound:${workload.meta.namespace}/${workload.meta.name}`, () => {
      const byPort = new Map<number, InboundPort>();
      const warnings: string[] = [];
      for (const entry of this.servicesOf(workload)) {
        for (const port of entry.ports) {
          const workloadPort = endpointPort(port, workload.spec);
          const host = entry.hosts[0] ?? entry.meta.name;
          const existing = byPort.get(workloadPort);
          if (existing === undefined) {
            byPort.set(workloadPort, {
              workloadPort,
              protocol: port.protocol,
              http: isHttpProtocol(port.protocol),
              services: [{ entry, host, port }],
            });
            continue;
          }
          existing.services.push({ entry, host, port });
          if (isHttpProtocol(port.protocol) !== existing.http) {
            const first = existing.services[0]!.entry;
            warnings.push(
              `workload port ${workloadPort} is ${existing.protocol} in ServiceEntry ${first.meta.namespace}/${first.meta.name} ` +
                `but ${port.protocol} in ServiceEntry ${entry.meta.namespace}/${entry.meta.name}; served as ${existing.protocol} (oldest wins)`,
            );
          }
        }
      }
      return { ports: [...byPort.values()].sort((a, b) => a.workloadPort - b.workloadPort), warnings };
    });
  }
}
