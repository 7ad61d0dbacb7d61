import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../common/clock.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { formatDuration } from '../common/duration.js';
import { RenewalTimer } from '../common/renewal-timer.js';
import {
  CA_REFRESH_INTERVAL_MS, MAX_WORKLOAD_CERT_TTL_MS, ROOT_CERT_TTL_MS, ROOT_ROTATION_OVERLAP_MS, ROOT_ROTATION_THRESHOLD, WORKLOAD_CERT_TTL_MS,
} from '../common/defaults.js';
import type { CertificateAuthority, IssueOptions, IssuedCertificate, IssuedKeyPair, LeafKeyType, RootKeyType, TrustBundle } from './types.js';
import { DEFAULT_REFRESH_HINT_SECONDS, sameRoots, spiffeBundleDocument, type SpiffeBundleDocument } from './bundle.js';
import { CaMaterialError, errorMessage } from './errors.js';
import { SvidIssuer, type SigningState } from './issuer.js';
import { ROOT_KEY_TYPES } from './keys.js';
import { CaMetrics } from './metrics.js';
import { PluginBundleSequence } from './plugin-sequence.js';
import { loadPluginCa, type PluginCa } from './plugin-ca.js';
import { mintRoot } from './root-mint.js';
import {
  activeRoot, bundleRoots, bundleSequence, initialJournal,
  nextRootId, nextTransition, pendingSuccessor, planRotation, rootState, rotationDue, rotationDueAt,
  type Journal, type RootRecord, type RootState,
} from './rotation.js';
import type { RandomSource } from './serial.js';
import { checkTrustDomain } from './spiffe-id.js';
import { decodePemOf } from './pem.js';
import { signingCertificate } from './signer.js';
import type { LoadedRoot } from './store.js';
import { FileRootBackend, type FirstRoot, type RootBackend } from './root-backend.js';
import { MintPool } from './mint-pool.js';

export interface CertificateAuthorityOptions {
  /** meshd's state directory; the built-in CA lives in <dataDir>/ca/. */
  dataDir: string;
  /** Where the built-in CA's roots and journal live (default <dataDir>/ca; a shared store with `meshd serve --store`). */
  rootBackend?: RootBackend;
  /** A plug-in CA in Istio's cacerts layout; when set, no root is generated. */
  caDir?: string;
  trustDomain: string;
  /** Key type of generated roots (default ec-p256). */
  rootKeyType?: RootKeyType;
  /** Life of generated roots (default 10 years, as Istio). */
  rootTtlMs?: number;
  /** Leaf TTL when the caller asks for none (default 24h). */
  defaultLeafTtlMs?: number;
  /** Longest leaf TTL; above is rejected (default 90 days). */
  maxLeafTtlMs?: number;
  /** How long a prepared root is in the bundle before it signs (default 24h). */
  rotationOverlapMs?: number;
  /** Rotate automatically in this last fraction of the active root's life (default 0.2). */
  rotationThreshold?: number;
  /** Rotate automatically at all (default true; built-in CA only). */
  autoRotate?: boolean;
  /** How often the running CA re-reads its journal / cacerts files and checks rotation (default 10s, as SPIRE's rotator). */
  refreshIntervalMs?: number;
  /** spiffe_refresh_hint (default 300 s). */
  refreshHintSeconds?: number;
  clock?: Clock;
  logger?: Logger;
  registry: Registry;
  random?: RandomSource;
  /**
   * Worker threads that mint P-256 leaves when the signing key is in this process (default 0:
   * on the event loop). `meshd serve` uses one per core beyond the first (mint-pool.ts).
   */
  mintWorkers?: number;
}

export interface RootStatus {
  id: string;
  state: RootState;
  keyType: RootKeyType | 'plug-in';
  fingerprint256: string;
  notBefore: Date;
  notAfter: Date;
  preparedAt?: Date;
  activateAt?: Date;
  pruneAt?: Date;
}

export interface CaStatus {
  mode: 'built-in' | 'plug-in';
  trustDomain: string;
  /** Where the material lives: <data-dir>/ca or the --ca-dir. */
  directory: string;
  roots: RootStatus[];
  bundleSequence: number;
  /** When automatic rotation will prepare the next root (built-in only). */
  nextRotationAt?: Date;
}

/** The CA as `meshd serve` and the CLI use it: CertificateAuthority plus lifecycle and rotation. */
export interface ManagedCertificateAuthority extends CertificateAuthority {
  readonly mode: 'built-in' | 'plug-in';
  /** Starts the refresh/rotation timer (unref'd). */
  start(): void;
  stop(): void;
  /**
   * Re-reads the journal (or the cacerts files) now. `meshd serve` does this every
   * refreshIntervalMs, which is how a `meshd ca rotate-root` run by another process reaches
   * it; call it on demand (e.g. on SIGHUP) to pick a change up at once. Rejects, keeping
   * the last good state, when the new material does not check out.
   */
  refresh(): Promise<void>;
  /** One timer pass: refresh(), then automatic rotation if due. Never rejects (errors are logged). */
  tick(): Promise<void>;
  /** The SPIFFE bundle document for /trust-bundle. */
  bundleJwks(): SpiffeBundleDocument;
  /** Adds a new root to the bundle now; it signs after the overlap. Built-in CA only. */
  prepareNextRoot(opts?: { overlapMs?: number }): Promise<RootStatus>;
  status(): CaStatus;
}

interface Settings {
  trustDomain: string;
  rootKeyType: RootKeyType;
  rootTtlMs: number;
  defaultLeafTtlMs: number;
  maxLeafTtlMs: number;
  rotationOverlapMs: number;
  rotationThreshold: number;
  autoRotate: boolean;
  refreshIntervalMs: number;
  refreshHintSeconds: number;
  mintWorkers: number;
}

function settings(o: CertificateAuthorityOptions): Settings {
  checkTrustDomain(o.trustDomain);
  const s: Settings = {
    trustDomain: o.trustDomain,
    rootKeyType: o.rootKeyType ?? 'ec-p256',
    rootTtlMs: o.rootTtlMs ?? ROOT_CERT_TTL_MS,
    defaultLeafTtlMs: o.defaultLeafTtlMs ?? WORKLOAD_CERT_TTL_MS,
    maxLeafTtlMs: o.maxLeafTtlMs ?? MAX_WORKLOAD_CERT_TTL_MS,
    rotationOverlapMs: o.rotationOverlapMs ?? ROOT_ROTATION_OVERLAP_MS,
    rotationThreshold: o.rotationThreshold ?? ROOT_ROTATION_THRESHOLD,
    autoRotate: o.autoRotate ?? true,
    refreshIntervalMs: o.refreshIntervalMs ?? CA_REFRESH_INTERVAL_MS,
    refreshHintSeconds: o.refreshHintSeconds ?? DEFAULT_REFRESH_HINT_SECONDS,
    mintWorkers: o.mintWorkers ?? 0,
  };
  if (!ROOT_KEY_TYPES.includes(s.rootKeyType)) throw new Error(`unsupported root key type "${s.rootKeyType}" (supported: ${ROOT_KEY_TYPES.join(', ')})`);
  if (!(s.defaultLeafTtlMs > 0 && s.defaultLeafTtlMs <= s.maxLeafTtlMs)) {
    throw new Error(`default leaf TTL ${formatDuration(s.defaultLeafTtlMs)} must be positive and at most the max leaf TTL ${formatDuration(s.maxLeafTtlMs)}`);
  }
  if (!(s.rootTtlMs > s.defaultLeafTtlMs)) throw new Error(`root TTL ${formatDuration(s.rootTtlMs)} must exceed the default leaf TTL`);
  if (!(s.rotationOverlapMs >= 0)) throw new Error('rotation overlap must not be negative');
  if (!(s.rotationThreshold > 0 && s.rotationThreshold < 1)) throw new Error('rotation threshold must be between 0 and 1');
  if (!(s.refreshIntervalMs > 0)) throw new Error('refresh interval must be positive');
  if (!(Number.isInteger(s.mintWorkers) && s.mintWorkers >= 0 && s.mintWorkers <= 64)) throw new Error(`mint workers must be a whole number from 0 to 64 (got ${s.mintWorkers})`);
  return s;
}

/** Opens the CA for a data dir: creates the built-in root on first start, or loads --ca-dir. */
export async function openCertificateAuthority(options: CertificateAuthorityOptions): Promise<ManagedCertificateAuthority> {
  const s = settings(options);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger();
  const metrics = new CaMetrics(options.registry, clock);
  const mintPool = s.mintWorkers > 0 ? new MintPool(s.mintWorkers, logger.child({ component: 'ca-mint' })) : undefined;
  const deps = { s, clock, logger, metrics, random: options.random, mintPool };
  try {
    return options.caDir
      ? await PluginAuthority.open(options.caDir, options.dataDir, deps)
      : await BuiltInAuthority.open(options.rootBackend ?? new FileRootBackend(options.dataDir, logger, s.trustDomain, () => clock.now()), deps);
  } catch (e) {
    await mintPool?.close();
    throw e;
  }
}

interface Deps {
  s: Settings;
  clock: Clock;
  logger: Logger;
  metrics: CaMetrics;
  random: RandomSource | undefined;
  mintPool: MintPool | undefined;
}

/** What both kinds share: issuing, the bundle and its subscribers, the timer. */
abstract class AuthorityBase implements ManagedCertificateAuthority {
  abstract readonly mode: 'built-in' | 'plug-in';
  readonly trustDomain: string;
  protected readonly issuer: SvidIssuer;
  protected bundle: TrustBundle;
  protected signing: SigningState | undefined;
  private readonly listeners = new Set<(bundle: TrustBundle) => void>();
  private activeFingerprint: string | undefined;
  /** The refresh and rotation check, every refreshIntervalMs after the previous one finished. */
  private readonly timer: RenewalTimer;
  private ticking = false;

  constructor(protected readonly deps: Deps) {
    this.trustDomain = deps.s.trustDomain;
    this.bundle = { trustDomain: this.trustDomain, rootsPem: [], sequence: 0, refreshHintSeconds: deps.s.refreshHintSeconds };
    this.timer = new RenewalTimer(deps.clock, () => this.tick(), { everyMs: deps.s.refreshIntervalMs });
    this.issuer = new SvidIssuer({
      trustDomain: this.trustDomain,
      defaultTtlMs: deps.s.defaultLeafTtlMs,
      maxTtlMs: deps.s.maxLeafTtlMs,
      clock: deps.clock,
      logger: deps.logger,
      metrics: deps.metrics,
      random: deps.random,
      mintPool: deps.mintPool,
      current: () => {
        this.syncTime();
        return this.signing;
      },
    });
  }

  issue(opts: IssueOptions & { keyType?: LeafKeyType }): Promise<IssuedKeyPair> {
    return this.issuer.issue(opts);
  }

  issueBatch(requests: ReadonlyArray<IssueOptions & { keyType?: LeafKeyType }>): Promise<Array<IssuedKeyPair | Error>> {
    return this.issuer.issueBatch(requests);
  }

  signCsr(opts: IssueOptions & { csrPem: string }): Promise<IssuedCertificate> {
    return this.issuer.signCsr(opts);
  }

  trustBundle(): TrustBundle {
    this.syncTime();
    return this.bundle;
  }

  bundleJwks(): SpiffeBundleDocument {
    return spiffeBundleDocument(this.trustBundle());
  }

  onBundleChange(listener: (bundle: TrustBundle) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  start(): void {
    if (this.timer.dueAt === undefined) this.timer.in(this.deps.s.refreshIntervalMs);
  }

  stop(): void {
    this.timer.clear();
    // Leaves asked for after this are minted inline.
    void this.deps.mintPool?.close();
  }

  /** One maintenance pass; errors are logged, the CA keeps serving what it has. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.refresh();
      await this.maintain();
    } catch (e) {
      this.deps.logger.error({ err: errorMessage(e) }, 'CA refresh failed; still serving the last good state');
    } finally {
      this.ticking = false;
    }
  }

  /** Recomputes state that changes with time alone (activation, pruning). */
  protected abstract syncTime(): void;
  protected abstract maintain(): Promise<void>;
  abstract refresh(): Promise<void>;
  abstract prepareNextRoot(opts?: { overlapMs?: number }): Promise<RootStatus>;
  abstract status(): CaStatus;

  /** Installs a new signing state and bundle; tells subscribers when either changed. */
  protected publish(signing: SigningState | undefined, rootsPem: string[], sequence: number, rootExpiry: number | undefined): void {
    const previous = this.bundle;
    const previousActive = this.activeFingerprint;
    this.signing = signing;
    this.activeFingerprint = signing?.signer.certificate.fingerprint256;
    const changed = !sameRoots(previous.rootsPem, rootsPem) || previous.sequence !== sequence || previousActive !== this.activeFingerprint;
    if (changed) this.bundle = { trustDomain: this.trustDomain, rootsPem, sequence, refreshHintSeconds: this.deps.s.refreshHintSeconds };
    const { metrics } = this.deps;
    metrics.setRootExpiry(rootExpiry);
    metrics.bundleRoots.set(rootsPem.length);
    metrics.bundleSequence.set(sequence);
    if (!changed || previous.sequence === 0) return; // the first state is not a change
    const bundle = this.bundle;
    this.deps.logger.info({ sequence, roots: rootsPem.length, signer: this.activeFingerprint }, 'trust bundle or signing root changed');
    queueMicrotask(() => {
      for (const listener of this.listeners) {
        try {
          listener(bundle);
        } catch (e) {
          this.deps.logger.error({ err: errorMessage(e) }, 'trust bundle listener failed');
        }
      }
    });
  }
}

/** A self-signed root (or several, during rotation) kept in <data-dir>/ca or in the shared store. */
class BuiltInAuthority extends AuthorityBase {
  readonly mode = 'built-in' as const;
  private journal!: Journal;
  private journalText = '';
  private readonly loaded = new Map<string, LoadedRoot>();
  private validUntil = -Infinity;

  private constructor(private readonly store: RootBackend, deps: Deps) {
    super(deps);
  }

  static async open(store: RootBackend, deps: Deps): Promise<BuiltInAuthority> {
    const ca = new BuiltInAuthority(store, deps);
    let minted: string | undefined;
    const read = await store.createFirst(async () => {
      const first = await ca.mintFirstRoot();
      minted = first.record.fingerprint256;
      return first;
    });
    if (minted !== undefined && read.journal.roots[0]?.fingerprint256 === minted) {
      const record = read.journal.roots[0];
      deps.logger.info({ dir: store.location, keyType: record.keyType, notAfter: new Date(record.notAfter).toISOString(), fingerprint: record.fingerprint256 },
        'created a new self-signed root CA');
    }
    await ca.adopt(read.journal, read.text, true);
    return ca;
  }

  private async mintFirstRoot(): Promise<FirstRoot> {
    const { s, clock } = this.deps;
    const now = clock.now();
    const minted = await mintRoot({ trustDomain: s.trustDomain, keyType: s.rootKeyType, ttlMs: s.rootTtlMs, now, random: this.deps.random });
    const record = recordFor('root-1', s.rootKeyType, minted.certDer);
    const journal = initialJournal(s.trustDomain, record, now);
    return { journal, record: journal.roots[0]!, minted };
  }

  /** Takes a journal as the new truth: loads any root it needs that is not loaded yet. */
  private async adopt(journal: Journal, text: string, startup: boolean): Promise<void> {
    const { s, clock } = this.deps;
    if (journal.trustDomain !== s.trustDomain) {
      throw new CaMaterialError(`${this.store.journalName} belongs to trust domain "${journal.trustDomain}", but this CA was started for "${s.trustDomain}"`, this.store.journalName);
    }
    const now = clock.now();
    const needed = journal.roots.filter((r) => now < Math.min(r.pruneAt ?? Infinity, r.notAfter));
    const fresh = new Map<string, LoadedRoot>();
    for (const r of needed) {
      const have = this.loaded.get(r.id);
      fresh.set(r.id, have && have.record.fingerprint256 === r.fingerprint256 ? { ...have, record: r } : await this.store.loadRoot(r, s.trustDomain));
    }
    if (startup && !activeRoot(journal.roots, now)) {
      throw new CaMaterialError(`${this.store.journalName} has no root that can sign now (all expired or pruned); move the ca directory away to start a new CA`, this.store.journalName);
    }
    this.loaded.clear();
    for (const [id, root] of fresh) this.loaded.set(id, root);
    this.journal = journal;
    this.journalText = text;
    this.recompute(now);
  }

  protected syncTime(): void {
    const now = this.deps.clock.now();
    if (now >= this.validUntil) this.recompute(now);
  }

  private recompute(now: number): void {
    const roots = this.journal.roots.filter((r) => this.loaded.has(r.id));
    const active = activeRoot(roots, now);
    const inBundle = bundleRoots(roots, now);
    const rootsPem = inBundle.map((r) => this.loaded.get(r.id)!.certPem);
    const signing = active ? { signer: this.loaded.get(active.id)!.signer, rootsPem: rootsPem.join('') } : undefined;
    this.validUntil = nextTransition(this.journal.roots, now, this.deps.s.rotationThreshold);
    this.publish(signing, rootsPem, bundleSequence(this.journal.roots, now), active?.notAfter);
  }

  async refresh(): Promise<void> {
    const read = await this.store.readJournal();
    if (!read) throw new CaMaterialError(`${this.store.journalName} disappeared`, this.store.journalName);
    if (read.text === this.journalText) {
      this.syncTime();
      return;
    }
    await this.adopt(read.journal, read.text, false);
    this.deps.logger.info({ journal: this.store.journalName }, 'CA journal changed; reloaded');
  }

  protected async maintain(): Promise<void> {
    const { s, clock, logger } = this.deps;
    if (!s.autoRotate || !rotationDue(this.journal.roots, clock.now(), s.rotationThreshold)) return;
    // With a shared store only the leader rotates; the others take the new root from the store.
    if (!this.store.mayRotateAutomatically()) return;
    logger.info({ threshold: s.rotationThreshold }, 'active root is in the last part of its life; preparing the next root');
    await this.prepareNextRoot({ auto: true });
  }

  async prepareNextRoot(opts: { overlapMs?: number; auto?: boolean } = {}): Promise<RootStatus> {
    const { s, clock, logger } = this.deps;
    const overlapMs = opts.overlapMs ?? s.rotationOverlapMs;
    if (!(overlapMs >= 0)) throw new Error('rotation overlap must not be negative');
    const record = await this.store.rotate(async (current, takenIds) => {
      const now = clock.now();
      if (opts.auto && !rotationDue(current.roots, now, s.rotationThreshold)) return undefined;
      const pending = pendingSuccessor(current.roots, now);
      if (pending) {
        throw new Error(`root ${pending.id} is already prepared and starts signing at ${new Date(pending.activateAt).toISOString()}; rotate again after that`);
      }
      const id = nextRootId(takenIds.map((taken) => ({ id: taken } as RootRecord)));
      const minted = await mintRoot({ trustDomain: s.trustDomain, keyType: s.rootKeyType, ttlMs: s.rootTtlMs, now, random: this.deps.random });
      const next = recordFor(id, s.rootKeyType, minted.certDer);
      const journal = planRotation(current, { now, next, overlapMs, maxLeafTtlMs: s.maxLeafTtlMs });
      return { journal, record: journal.roots.find((r) => r.id === id)!, minted };
    }, { automatic: opts.auto === true });
    if (record) logger.info({ id: record.id, activateAt: new Date(record.activateAt).toISOString(), fingerprint: record.fingerprint256 }, 'prepared a new root: in the trust bundle now, signing after the overlap');
    await this.refresh();
    const status = this.status().roots.find((r) => r.id === record?.id);
    if (!status) throw new Error('rotation was no longer due (another process rotated)');
    return status;
  }

  status(): CaStatus {
    const now = this.deps.clock.now();
    const roots = this.journal.roots;
    const active = activeRoot(roots, now);
    const { s } = this.deps;
    const successor = pendingSuccessor(roots, now);
    return {
      mode: 'built-in',
      trustDomain: this.trustDomain,
      directory: this.store.location,
      roots: roots.map((r) => ({
        id: r.id,
        state: rootState(r, roots, now),
        keyType: r.keyType,
        fingerprint256: r.fingerprint256,
        notBefore: new Date(r.notBefore),
        notAfter: new Date(r.notAfter),
        preparedAt: new Date(r.preparedAt),
        activateAt: new Date(r.activateAt),
        ...(r.pruneAt === undefined ? {} : { pruneAt: new Date(r.pruneAt) }),
      })),
      bundleSequence: bundleSequence(roots, now),
      ...(active && !successor && s.autoRotate ? { nextRotationAt: new Date(rotationDueAt(active, s.rotationThreshold)) } : {}),
    };
  }
}

function recordFor(id: string, keyType: RootKeyType, der: Buffer): Omit<RootRecord, 'preparedAt' | 'activateAt' | 'pruneAt'> {
  const cert = signingFacts(der);
  return { id, keyType, fingerprint256: cert.fingerprint256, notBefore: cert.notBefore, notAfter: cert.notAfter };
}

function signingFacts(der: Buffer): { fingerprint256: string; notBefore: number; notAfter: number } {
  const c = signingCertificate(der);
  return { fingerprint256: c.fingerprint256, notBefore: c.notBefore, notAfter: c.notAfter };
}

function factsFromPem(pem: string): { fingerprint256: string; notBefore: number; notAfter: number } {
  return signingFacts(decodePemOf(pem, 'CERTIFICATE', 'root')[0]!);
}

/** Istio's plug-in CA: an operator-provided intermediate from --ca-dir, hot-reloaded when its files change. */
class PluginAuthority extends AuthorityBase {
  readonly mode = 'plug-in' as const;
  private plugin!: PluginCa;

  private constructor(private readonly caDir: string, private readonly sequence: PluginBundleSequence, deps: Deps) {
    super(deps);
  }

  static async open(caDir: string, dataDir: string, deps: Deps): Promise<PluginAuthority> {
    const plugin = await loadPluginCa(caDir, deps.s.trustDomain, deps.clock.now());
    const sequence = await PluginBundleSequence.open(join(dataDir, 'ca', 'plug-in-bundle.json'));
    const ca = new PluginAuthority(caDir, sequence, deps);
    await ca.install(plugin);
    deps.logger.info({ dir: caDir, signer: plugin.signer.certificate.fingerprint256, roots: plugin.rootsPem.length }, 'loaded plug-in CA');
    return ca;
  }

  private async install(plugin: PluginCa): Promise<void> {
    this.plugin = plugin;
    const sequence = await this.sequence.forRoots(plugin.rootsPem);
    const rootExpiry = Math.min(...plugin.rootsPem.map((p) => factsFromPem(p).notAfter));
    this.deps.metrics.setChainExpiry(plugin.signer.chainNotAfter);
    this.publish({ signer: plugin.signer, rootsPem: plugin.rootsPem.join('') }, plugin.rootsPem, sequence, rootExpiry);
  }

  protected syncTime(): void {
    // Nothing here changes with time alone; an expired chain is refused by the issuer.
  }

  async refresh(): Promise<void> {
    const next = await loadPluginCa(this.caDir, this.deps.s.trustDomain, this.deps.clock.now());
    if (next.contentHash === this.plugin.contentHash) return;
    await this.install(next);
    this.deps.logger.info({ dir: this.caDir, signer: next.signer.certificate.fingerprint256 }, 'plug-in CA files changed; reloaded');
  }

  protected async maintain(): Promise<void> {}

  prepareNextRoot(): Promise<RootStatus> {
    return Promise.reject(new Error(`root rotation is not meshd's to do for a plug-in CA: update ${this.caDir}/root-cert.pem (old and new roots together), then the intermediate; meshd reloads the files`));
  }

  status(): CaStatus {
    const roots: RootStatus[] = this.plugin.rootsPem.map((pem, i) => {
      const facts = factsFromPem(pem);
      return { id: `root-cert.pem#${i + 1}`, state: 'active', keyType: 'plug-in', fingerprint256: facts.fingerprint256, notBefore: new Date(facts.notBefore), notAfter: new Date(facts.notAfter) };
    });
    return { mode: 'plug-in', trustDomain: this.trustDomain, directory: this.caDir, roots, bundleSequence: this.bundle.sequence };
  }
}
