import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { ConfigWatcher, type MeshSnapshot, type SnapshotDiff } from '../config/index.js';
import type { AdmitProxy } from '../xds/core/types.js';
import type { DiscoveryCore } from '../xds/core/index.js';
import { createSidecarGenerators } from '../xds/generators/sidecar-generators.js';
import { createGrpcGenerators } from '../xds/generators/grpc/index.js';
import { dispatchByProxyKind } from '../xds/generators/generator-dispatch.js';
import { admitProxy } from '../xds/admission/admit-proxy.js';
import { configPushRequest } from '../xds/push-plan/affected-proxies.js';
import { emptySnapshot, StoreConfigSource } from './store-config.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { ConfigRepository } from '../store/config-repository.js';

export interface MeshStateOptions {
  configDir?: string;
  /** The mesh config from the shared store instead of a config dir (`meshd serve --store`). */
  store?: { config: ConfigRepository; feed: ChangeFeed };
  logger: Logger;
  trustDomain: string;
  trustDomainFromFlag: boolean;
  /** The watcher's time and timers (default the system clock). */
  clock?: Clock;
}

/** Where the config in force comes from: a watched config dir, or the shared store. */
interface ConfigSource {
  readonly current: MeshSnapshot;
  stop(): Promise<void>;
}

/**
 * The mesh model in force and what follows from a change: the current snapshot for the
 * generators, admission of proxies against their WorkloadEntry, and pushes scoped to the
 * proxies a change affects. Without a config dir the mesh is empty (SDS still works).
 */
export class MeshState {
  private current: MeshSnapshot;
  private core: DiscoveryCore | undefined;
  private readonly listeners: Array<(snapshot: MeshSnapshot) => void> = [];

  private constructor(private readonly watcher: ConfigSource | undefined, fallback: MeshSnapshot, private readonly logger: Logger) {
    this.current = watcher?.current ?? fallback;
  }

  static async open(options: MeshStateOptions): Promise<MeshState> {
    let state: MeshState | undefined;
    if (options.configDir && options.store) throw new Error('--config-dir and --store are two sources of mesh config; give one (with --store, meshd config apply -f DIR puts the config in the store)');
    const logger = options.logger.child({ component: 'config' });
    const onChange = (s: MeshSnapshot, d: SnapshotDiff): void => state?.apply(s, d);
    const watcher: ConfigSource | undefined = options.configDir
      ? await ConfigWatcher.start({ dir: options.configDir, logger, clock: options.clock, onChange })
      : options.store
        ? await StoreConfigSource.start({ ...options.store, logger, trustDomain: options.trustDomain, onChange })
        : undefined;
    const fallback = emptySnapshot(options.trustDomain);
    state = new MeshState(watcher, fallback, options.logger);
    const configured = state.current.mesh.trustDomain;
    if (watcher && options.trustDomainFromFlag && configured !== options.trustDomain) {
      await watcher.stop();
      throw new Error(`--trust-domain ${options.trustDomain} disagrees with the mesh config's trustDomain ${configured}; set one of them`);
    }
    return state;
  }

  get snapshot(): MeshSnapshot {
    return this.current;
  }

  /** Registers the xDS generators on the core and starts pushing config changes to it. */
  attach(core: DiscoveryCore): void {
    this.core = core;
    for (const g of dispatchByProxyKind({ sidecar: createSidecarGenerators(() => this.current), grpc: createGrpcGenerators(() => this.current) })) core.register(g);
  }

  /** Admission against the config in force (xds/admission/admit-proxy.ts says who gets what, and why). */
  readonly admit: AdmitProxy = admitProxy(() => this.current);

  /** Called with every new snapshot once it is in force (e.g. telemetry's workload names). */
  onSnapshot(listener: (snapshot: MeshSnapshot) => void): void {
    this.listeners.push(listener);
  }

  private apply(next: MeshSnapshot, diff: SnapshotDiff): void {
    const prev = this.current;
    if (next.mesh.trustDomain !== prev.mesh.trustDomain) {
      this.logger.error({ from: prev.mesh.trustDomain, to: next.mesh.trustDomain }, 'the trust domain cannot change while meshd runs (the CA is bound to it); keeping the previous mesh config');
      return;
    }
    this.current = next;
    for (const listener of this.listeners) {
      try { listener(next); } catch (err) { this.logger.error({ err: (err as Error).message }, 'a mesh config listener failed'); }
    }
    const push = configPushRequest(prev, next, diff);
    if (push && this.core) void this.core.push(push);
  }

  async close(): Promise<void> {
    await this.watcher?.stop();
  }
}
