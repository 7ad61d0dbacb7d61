import { createHash } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { parseBundleDocument } from './bundle-document.js';
import { BundleRefresher, readBundleFile, type HeldBundle, type HeldSource, type RefreshOutcome } from './bundle-refresher.js';
import type { FederatedBundleStore, StoredBundle } from './bundle-store.js';
import { FederationMetrics } from './metrics.js';
import { describeSource, sameRelationship, type FederationRelationship } from './relationship.js';

/**
 * The foreign bundles meshd trusts, one per federated trust domain, kept current by one
 * BundleRefresher each and exposed as a small observable for whoever serves them on (SDS).
 *
 * Bundles are kept per trust domain and never merged (SPIFFE Federation §4.2), and no bundle is
 * ever held for meshd's own trust domain or an alias of it: a relationship naming one is
 * refused here as well as in the config, so a foreign CA can never become a signer of meshd's
 * own identities.
 *
 * Where a bundle comes from when a relationship starts:
 * - the bundle stored from the endpoint's last good answer, unless the configured bundle
 *   changed since it was stored (the operator re-bootstrapping the federation);
 * - otherwise the configured bundle (spec.trustDomainBundle or its file);
 * - then the endpoint, refreshed on its hint. A trust domain removed from the config is
 *   forgotten, its stored bundle deleted (SPIFFE Federation §6.3).
 */

export interface TrustedForeignBundle {
  trustDomain: string;
  /** The trust domain's X.509 authorities, PEM. */
  rootsPem: readonly string[];
  sequence?: bigint;
  /** When its source last confirmed it (ms since the epoch). */
  fetchedAt: number;
  source: HeldSource;
  /** The URL, path or config field it came from. */
  from: string;
}

/** What the data plane side reads: the trusted foreign bundles and their changes. */
export interface ForeignBundleSet {
  current(): ReadonlyMap<string, TrustedForeignBundle>;
  /** Called after the set of trust domains, or any one's authorities or sequence, changed. Returns an unsubscribe. */
  onChange(listener: (bundles: ReadonlyMap<string, TrustedForeignBundle>) => void): () => void;
}

export interface FederatedBundlesOptions {
  /** meshd's own trust domain and its aliases, read at every config change. */
  ownTrustDomains: () => readonly string[];
  store: FederatedBundleStore;
  logger: Logger;
  registry: Registry;
  /** Whose timers schedule the refreshes. */
  clock: Clock;
  random?: () => number;
  fetchTimeoutMs?: number;
  /** https_web endpoints: CAs trusted beside Node's list (a private PKI; tests). */
  extraWebCaPem?: string;
}

function digest(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

function contentKey(map: ReadonlyMap<string, TrustedForeignBundle>): string {
  return JSON.stringify([...map.values()].map((b) => [b.trustDomain, b.sequence?.toString() ?? null, b.rootsPem]));
}

export class FederatedBundles implements ForeignBundleSet {
  readonly metrics: FederationMetrics;
  private readonly refreshers = new Map<string, BundleRefresher>();
  private readonly listeners = new Set<(bundles: ReadonlyMap<string, TrustedForeignBundle>) => void>();
  private readonly random: () => number;
  private view: ReadonlyMap<string, TrustedForeignBundle> = new Map();
  private viewKey = contentKey(new Map());
  private stored = new Map<string, StoredBundle>();
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: FederatedBundlesOptions) {
    this.metrics = new FederationMetrics(options.registry);
    this.random = options.random ?? Math.random;
  }

  current(): ReadonlyMap<string, TrustedForeignBundle> {
    return this.view;
  }

  onChange(listener: (bundles: ReadonlyMap<string, TrustedForeignBundle>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Loads the stored bundles, then applies the configured relationships. */
  start(relationships: readonly FederationRelationship[]): Promise<void> {
    return this.enqueue(async () => {
      try {
        const { records, problems } = await this.options.store.load();
        for (const p of problems) this.options.logger.warn({ problem: p }, 'a stored foreign bundle cannot be read; it is ignored');
        this.stored = new Map(records.map((r) => [r.trustDomain, r]));
      } catch (err) {
        this.metrics.storeErrors.inc({ operation: 'load' });
        this.options.logger.error({ err: (err as Error).message }, 'cannot read the stored foreign bundles; starting from the configured ones');
      }
      await this.reconcile(relationships);
      // Stored bundles of trust domains no longer federated: the federation ended while meshd was down.
      for (const td of this.stored.keys()) await this.forgetStored(td);
      this.stored.clear();
    });
  }

  /** A config change: starts, restarts or stops refreshers so they match `relationships`. */
  apply(relationships: readonly FederationRelationship[]): Promise<void> {
    return this.enqueue(() => this.reconcile(relationships));
  }

  /** Refreshes one trust domain now (undefined when it is not federated). */
  async refresh(trustDomain: string): Promise<RefreshOutcome | undefined> {
    await this.queue;
    return this.refreshers.get(trustDomain)?.refresh();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue;
    await Promise.all([...this.refreshers.values()].map((r) => r.stop()));
  }

  private enqueue(job: () => Promise<void>): Promise<void> {
    const next = this.queue.then(() => (this.stopped ? undefined : job()));
    this.queue = next.catch((err: unknown) => {
      this.options.logger.error({ err: (err as Error).message }, 'applying the federation config failed');
    });
    return this.queue;
  }

  private async reconcile(relationships: readonly FederationRelationship[]): Promise<void> {
    const own = new Set(this.options.ownTrustDomains());
    const wanted = new Map<string, FederationRelationship>();
    for (const r of relationships) {
      if (own.has(r.trustDomain)) {
        this.options.logger.error({ trustDomain: r.trustDomain }, `refusing to federate with ${r.trustDomain}: it is meshd's own trust domain or an alias`);
        continue;
      }
      if (wanted.has(r.trustDomain)) {
        this.options.logger.error({ trustDomain: r.trustDomain }, `refusing a second federation relationship for ${r.trustDomain}`);
        continue;
      }
      wanted.set(r.trustDomain, r);
    }
    for (const [td, refresher] of [...this.refreshers]) {
      if (wanted.has(td)) continue;
      await refresher.stop();
      this.refreshers.delete(td);
      this.metrics.forget(td);
      await this.forgetStored(td);
      this.options.logger.info({ trustDomain: td }, `no longer federated with ${td}; its bundle is no longer trusted`);
    }
    for (const [td, r] of wanted) {
      const previous = this.refreshers.get(td);
      if (previous && sameRelationship(previous.relationship, r)) continue;
      await previous?.stop();
      const refresher = await this.makeRefresher(r, previous);
      this.refreshers.set(td, refresher);
      this.options.logger.info({ trustDomain: td, source: describeSource(r), holding: refresher.held?.from ?? null }, previous ? `federation with ${td} changed` : `federating with ${td}`);
      this.publishMetrics(td, refresher);
      refresher.start();
    }
    this.republish();
  }

  private async makeRefresher(r: FederationRelationship, previous: BundleRefresher | undefined): Promise<BundleRefresher> {
    const td = r.trustDomain;
    const configured = await this.configuredBundle(r);
    const stored = this.stored.get(td);
    this.stored.delete(td);
    let held: HeldBundle | undefined;
    if (!r.endpoint) {
      held = configured?.held;
      if (stored) await this.forgetStored(td);
    } else if (previous) {
      const rebootstrap = configured !== undefined && configured.digest !== previous.configuredDigest;
      held = rebootstrap ? configured.held : previous.held ?? configured?.held;
    } else {
      const fromStore = stored && (configured === undefined || stored.configuredDigest === configured.digest) ? this.fromStore(stored) : undefined;
      held = fromStore ?? configured?.held;
    }
    return new BundleRefresher(r, {
      clock: this.options.clock,
      random: this.random,
      logger: this.options.logger,
      metrics: this.metrics,
      store: this.options.store,
      fetchTimeoutMs: this.options.fetchTimeoutMs,
      extraWebCaPem: this.options.extraWebCaPem,
      onHeld: (trustDomain, _held, changed) => {
        const current = this.refreshers.get(trustDomain);
        if (!current) return;
        if (changed) this.metrics.updates.inc({ trust_domain: trustDomain });
        this.publishMetrics(trustDomain, current);
        this.republish();
      },
    }, held, configured?.digest);
  }

  /** The bundle written in the config (inline or its file), parsed; undefined when there is none or it is unusable. */
  private async configuredBundle(r: FederationRelationship): Promise<{ held: HeldBundle; digest: string } | undefined> {
    const b = r.bundle;
    if (!b) return undefined;
    let text: Buffer | string;
    let from: string;
    if (b.kind === 'inline') {
      text = b.document;
      from = 'ClusterFederatedTrustDomain spec.trustDomainBundle';
    } else {
      from = b.path;
      try {
        text = await readBundleFile(b.path);
      } catch (err) {
        this.metrics.failed(r.trustDomain, 'file-unreadable');
        this.options.logger.warn({ trustDomain: r.trustDomain, path: b.path, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message }, `cannot read the bundle file of ${r.trustDomain}`);
        return undefined;
      }
    }
    const parsed = parseBundleDocument(text, r.trustDomain);
    if (!parsed.ok) {
      this.metrics.failed(r.trustDomain, parsed.reason);
      this.options.logger.warn({ trustDomain: r.trustDomain, from, reason: parsed.reason }, `the configured bundle of ${r.trustDomain} is refused: ${parsed.message}`);
      return undefined;
    }
    return {
      held: { bundle: parsed.bundle, fetchedAt: this.options.clock.now(), source: b.kind === 'file' ? 'file' : 'configured', from },
      digest: digest(text.toString()),
    };
  }

  private fromStore(s: StoredBundle): HeldBundle | undefined {
    const parsed = parseBundleDocument(s.document, s.trustDomain);
    if (!parsed.ok) {
      this.options.logger.warn({ trustDomain: s.trustDomain, reason: parsed.reason }, `the stored bundle of ${s.trustDomain} is refused: ${parsed.message}`);
      return undefined;
    }
    return { bundle: parsed.bundle, fetchedAt: s.fetchedAt, source: 'stored', from: s.endpoint };
  }

  private async forgetStored(trustDomain: string): Promise<void> {
    try {
      await this.options.store.remove(trustDomain);
    } catch (err) {
      this.metrics.storeErrors.inc({ operation: 'remove' });
      this.options.logger.error({ trustDomain, err: (err as Error).message }, `cannot delete the stored bundle of ${trustDomain}`);
    }
  }

  private publishMetrics(td: string, r: BundleRefresher): void {
    const labels = { trust_domain: td };
    const held = r.held;
    this.metrics.lastRefresh.set(labels, (held?.fetchedAt ?? this.options.clock.now()) / 1000);
    if (r.refreshes) this.metrics.interval.set(labels, r.intervalMs / 1000);
    else this.metrics.interval.remove(labels);
    this.metrics.authorities.set(labels, held?.bundle.rootsPem.length ?? 0);
    if (held?.bundle.sequence !== undefined) this.metrics.sequence.set(labels, Number(held.bundle.sequence));
    else this.metrics.sequence.remove(labels);
  }

  private republish(): void {
    const next = new Map<string, TrustedForeignBundle>();
    for (const td of [...this.refreshers.keys()].sort()) {
      const held = this.refreshers.get(td)!.held;
      if (held) next.set(td, view(td, held));
    }
    const key = contentKey(next);
    this.view = next;
    if (key === this.viewKey) return;
    this.viewKey = key;
    for (const listener of this.listeners) {
      try {
        listener(next);
      } catch (err) {
        this.options.logger.error({ err: (err as Error).message }, 'a foreign bundle listener failed');
      }
    }
  }
}

function view(trustDomain: string, held: HeldBundle): TrustedForeignBundle {
  const out: TrustedForeignBundle = { trustDomain, rootsPem: held.bundle.rootsPem, fetchedAt: held.fetchedAt, source: held.source, from: held.from };
  if (held.bundle.sequence !== undefined) out.sequence = held.bundle.sequence;
  return out;
}
