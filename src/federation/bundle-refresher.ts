import { open } from 'node:fs/promises';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { MAX_BUNDLE_BYTES, parseBundleDocument, type BundleRefusal, type ForeignBundle } from './bundle-document.js';
import type { FederatedBundleStore } from './bundle-store.js';
import { supersedes } from './bundle-supersession.js';
import { fetchBundleBody, type FetchFailure } from './fetch-bundle.js';
import type { FederationMetrics } from './metrics.js';
import { nextRefreshDelayMs, refreshIntervalMs, retryDelayMs, MIN_REFRESH_MS } from './refresh-schedule.js';
import type { FederationRelationship } from './relationship.js';

/**
 * Keeps one foreign trust domain's bundle current: fetches it from its endpoint (or re-reads
 * its file) on the refresh schedule, and replaces the bundle it holds only with one that
 * parsed strictly, belongs to this trust domain, came from this trust domain's configured
 * source over an authenticated connection, and supersedes it. Any failure leaves the held
 * bundle in force; the reason is logged and counted, and the next attempt backs off.
 */

export type RefreshFailure = FetchFailure | BundleRefusal | 'sequence-regressed' | 'sequence-reused' | 'no-bundle' | 'file-unreadable' | 'internal';

export type RefreshOutcome = { ok: true; changed: boolean } | { ok: false; reason: RefreshFailure; message: string };

/** Where the bundle in force came from. */
export type HeldSource = 'endpoint' | 'file' | 'configured' | 'stored';

export interface HeldBundle {
  bundle: ForeignBundle;
  /** When its source last confirmed it (ms since the epoch). */
  fetchedAt: number;
  source: HeldSource;
  /** The URL, path or config field it came from. */
  from: string;
}

export interface RefresherDeps {
  clock: Clock;
  /** Uniform in [0, 1): jitter. */
  random: () => number;
  logger: Logger;
  metrics: FederationMetrics;
  store: FederatedBundleStore;
  fetchTimeoutMs?: number;
  /** https_web: CAs trusted beside Node's list (a private PKI; tests). */
  extraWebCaPem?: string;
  /** Called when the held bundle changed or was confirmed. */
  onHeld: (trustDomain: string, held: HeldBundle, changed: boolean) => void;
}

/** A bundle file is re-read this often (its changes are picked up within it). */
export const FILE_POLL_MS = MIN_REFRESH_MS;
/** A stored record is rewritten at least this often while the endpoint only confirms it. */
const STORE_CONFIRM_MS = 3_600_000;

class Refusal extends Error {
  constructor(readonly reason: RefreshFailure, message: string) {
    super(message);
  }
}

/** Reads a bundle file, at most MAX_BUNDLE_BYTES + 1 bytes (one more tells "too large"). */
export async function readBundleFile(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(MAX_BUNDLE_BYTES + 1);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, size, buf.length - size, null);
      if (bytesRead === 0) break;
      size += bytesRead;
      if (size === buf.length) break;
    }
    return buf.subarray(0, size);
  } finally {
    await fh.close();
  }
}

export class BundleRefresher {
  private cancelTimer: (() => void) | undefined;
  private inFlight: Promise<RefreshOutcome> | undefined;
  private failures = 0;
  private stopped = false;
  private lastFileText: string | undefined;
  private lastSavedAt = 0;

  constructor(
    readonly relationship: FederationRelationship,
    private readonly deps: RefresherDeps,
    private current: HeldBundle | undefined,
    /** Digest of the configured bundle this relationship was bootstrapped from. */
    readonly configuredDigest: string | undefined,
  ) {}

  get trustDomain(): string {
    return this.relationship.trustDomain;
  }

  get held(): HeldBundle | undefined {
    return this.current;
  }

  /** Whether anything is ever fetched or re-read (a bundle written in the config is not). */
  get refreshes(): boolean {
    return this.relationship.endpoint !== undefined || this.relationship.bundle?.kind === 'file';
  }

  get intervalMs(): number {
    if (!this.relationship.endpoint) return FILE_POLL_MS;
    return refreshIntervalMs(this.current?.bundle.refreshHintSeconds);
  }

  /** Refreshes at once, then on the schedule. */
  start(): void {
    if (this.refreshes) this.arm(0);
  }

  /** Stops refreshing; resolves when an attempt under way has finished (nothing is published after). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.inFlight;
  }

  /** One attempt now (joins one under way); never rejects. */
  refresh(): Promise<RefreshOutcome> {
    this.inFlight ??= this.attempt().finally(() => { this.inFlight = undefined; });
    return this.inFlight;
  }

  private arm(ms: number): void {
    this.cancelTimer?.();
    if (this.stopped) return;
    this.cancelTimer = this.deps.clock.timer(ms, () => {
      this.cancelTimer = undefined;
      void this.refresh().then((outcome) => {
        if (this.stopped) return;
        const interval = this.intervalMs;
        this.arm(outcome.ok ? nextRefreshDelayMs(interval, this.deps.random()) : retryDelayMs(this.failures, interval, this.deps.random()));
      });
    });
  }

  private async attempt(): Promise<RefreshOutcome> {
    const td = this.trustDomain;
    try {
      const { bundle, text, from, source } = this.relationship.endpoint ? await this.fetch() : await this.readFile();
      if (this.stopped) return { ok: true, changed: false };
      let changed = true;
      let next = bundle;
      if (source === 'endpoint') {
        const decision = supersedes(this.current?.bundle, bundle);
        if (decision.kind === 'refused') throw new Refusal(decision.reason, decision.message);
        changed = decision.kind === 'changed';
        // Confirmed: keep the authorities and sequence held, take the latest refresh hint.
        if (!changed && this.current) next = { ...bundle, rootsPem: this.current.bundle.rootsPem, sequence: this.current.bundle.sequence };
      } else if (this.current) {
        changed = text !== undefined || this.current.source !== 'file';
      }
      const now = this.deps.clock.now();
      if (source === 'endpoint' && text !== undefined && (changed || now - this.lastSavedAt >= STORE_CONFIRM_MS)) await this.save(text, now);
      if (this.stopped) return { ok: true, changed: false };
      this.failures = 0;
      this.current = { bundle: next, fetchedAt: now, source, from };
      if (changed) {
        this.deps.logger.info(
          { trustDomain: td, from, sequence: next.sequence?.toString() ?? null, authorities: next.rootsPem.length, skipped: next.skipped.length > 0 ? next.skipped : undefined },
          `trusting a new bundle for ${td}`,
        );
      }
      this.deps.onHeld(td, this.current, changed);
      return { ok: true, changed };
    } catch (caught) {
      // Whatever went wrong, the process goes on and the held bundle stays.
      const err = caught instanceof Refusal ? caught : new Refusal('internal', `unexpected error: ${(caught as Error)?.message ?? String(caught)}`);
      if (this.stopped) return { ok: false, reason: err.reason, message: err.message };
      this.failures++;
      this.deps.metrics.failed(td, err.reason);
      const held = this.current;
      this.deps.logger.warn(
        {
          trustDomain: td, reason: err.reason, attempt: this.failures,
          kept: held ? { sequence: held.bundle.sequence?.toString() ?? null, from: held.from, fetchedAt: new Date(held.fetchedAt).toISOString() } : null,
        },
        `refreshing the bundle of ${td} failed: ${err.message}; ${held ? 'the last good bundle stays in force' : 'no bundle is trusted for it yet'}`,
      );
      return { ok: false, reason: err.reason, message: err.message };
    }
  }

  private async fetch(): Promise<{ bundle: ForeignBundle; text?: string; from: string; source: HeldSource }> {
    const { url, profile } = this.relationship.endpoint!;
    const td = this.trustDomain;
    const rootsPem = this.current?.bundle.rootsPem;
    if (profile.type === 'https_spiffe' && (rootsPem === undefined || rootsPem.length === 0)) {
      throw new Refusal('no-bundle', `no bundle of ${td} is held to authenticate ${profile.endpointSpiffeId} with; set spec.trustDomainBundle`);
    }
    const r = await fetchBundleBody(
      { url, profile, rootsPem, extraCaPem: this.deps.extraWebCaPem },
      { clock: this.deps.clock, timeoutMs: this.deps.fetchTimeoutMs },
    );
    if (!r.ok) throw new Refusal(r.reason, r.message);
    const parsed = parseBundleDocument(r.body, td);
    if (!parsed.ok) throw new Refusal(parsed.reason, `the bundle served by ${url} is refused: ${parsed.message}`);
    return { bundle: parsed.bundle, text: r.body.toString('utf8'), from: url, source: 'endpoint' };
  }

  /** A static bundle file; `text` is undefined when it has not changed since the last read. */
  private async readFile(): Promise<{ bundle: ForeignBundle; text?: string; from: string; source: HeldSource }> {
    const path = (this.relationship.bundle as { path: string }).path;
    let buf: Buffer;
    try {
      buf = await readBundleFile(path);
    } catch (err) {
      throw new Refusal('file-unreadable', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const text = buf.toString('utf8');
    if (text === this.lastFileText && this.current?.source === 'file') return { bundle: this.current.bundle, from: path, source: 'file' };
    const parsed = parseBundleDocument(buf, this.trustDomain);
    if (!parsed.ok) throw new Refusal(parsed.reason, `${path} is refused: ${parsed.message}`);
    this.lastFileText = text;
    return { bundle: parsed.bundle, text, from: path, source: 'file' };
  }

  private async save(document: string, now: number): Promise<void> {
    const { url } = this.relationship.endpoint!;
    try {
      await this.deps.store.save({
        trustDomain: this.trustDomain, document, fetchedAt: now, endpoint: url,
        ...(this.configuredDigest !== undefined ? { configuredDigest: this.configuredDigest } : {}),
      });
      this.lastSavedAt = now;
    } catch (err) {
      this.deps.metrics.storeErrors.inc({ operation: 'save' });
      this.deps.logger.error({ trustDomain: this.trustDomain, err: (err as Error).message }, `cannot store the bundle of ${this.trustDomain}; it is trusted in memory and fetched again after a restart`);
    }
  }
}
