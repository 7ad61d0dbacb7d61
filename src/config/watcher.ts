/**
 * Watches a config dir and publishes a new snapshot on change.
 *
 * fs.watch on the directory catches writes, creates, deletes and the rename an editor or
 * `kubectl`-style tool uses for an atomic replace. Events are debounced as istiod debounces
 * config pushes (PILOT_DEBOUNCE_AFTER 100 ms, at most PILOT_DEBOUNCE_MAX): a burst of writes
 * becomes one reload. A reload that changes nothing (not even a message) publishes nothing.
 *
 * fs.watch follows the directory's inode, not its path. So the path is also checked every
 * couple of seconds (one stat): a dir that was deleted and made again, or a path that is a
 * symlink switched to another dir (how config-sync tools and Kubernetes volume mounts replace
 * a whole tree at once), is watched anew and reloaded. While the dir is gone, the config in
 * force stays, as for any unreadable config.
 *
 * Large files are parsed on a worker thread (off-thread-parse.ts), so a reload never holds
 * the event loop for long; stop() ends a parse in progress.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { systemClock, type Clock } from '../common/clock.js';
import { CONFIG_DEBOUNCE_MAX_MS, CONFIG_DEBOUNCE_MS, CONFIG_PATH_CHECK_MS } from '../common/defaults.js';
import type { Logger } from '../common/logger.js';
import { diffSnapshots, fullDiff, type SnapshotDiff } from './diff.js';
import { loadConfigDir } from './load-config-dir.js';
import { FileParseCache } from './build-snapshot.js';
import { ConfigParseAborted, OffThreadParser, type ConfigParser } from './off-thread-parse.js';
import type { ConfigMessage, MeshSnapshot } from './model.js';

export interface ConfigWatcherOptions {
  dir: string;
  logger: Logger;
  /** Called with every new snapshot after the first; errors thrown here are logged. */
  onChange: (snapshot: MeshSnapshot, diff: SnapshotDiff) => void;
  /** Quiet time before a reload (default 100 ms, Istio's PILOT_DEBOUNCE_AFTER). */
  debounceMs?: number;
  /** Longest a reload waits under a steady stream of events (default 1 s). */
  maxDelayMs?: number;
  /** How often the path is checked for a replaced or re-created dir (default 2 s). */
  pathCheckMs?: number;
  /** Whose time and timers debounce events and pace the path check (default the system clock). */
  clock?: Clock;
  /** Tests: how files are parsed (default: on a worker thread when there is more than 8 KiB to parse). */
  parser?: ConfigParser;
}

const messageKey = (m: ConfigMessage): string => `${m.level}|${m.source.file}|${m.source.line}|${m.resource ?? ''}|${m.message}`;

export class ConfigWatcher {
  private watcher: FSWatcher | undefined;
  private cancelReload: (() => void) | undefined;
  private firstEventAt = 0;
  private reloading: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly cache: FileParseCache;
  /** dev:ino of the dir fs.watch follows; undefined while the path has no dir. */
  private watchedDir: string | undefined;
  private cancelPathCheck: (() => void) | undefined;
  private checkingPath = false;
  private readonly clock: Clock;

  private constructor(private readonly options: ConfigWatcherOptions, private snapshot: MeshSnapshot, cache: FileParseCache, private readonly parser: ConfigParser) {
    this.cache = cache;
    this.clock = options.clock ?? systemClock;
  }

  /** Load the dir once (reporting its messages) and start watching it. */
  static async start(options: ConfigWatcherOptions): Promise<ConfigWatcher> {
    const cache = new FileParseCache();
    const parser = options.parser ?? new OffThreadParser({ logger: options.logger });
    const first = await loadConfigDir(options.dir, undefined, cache, parser);
    const w = new ConfigWatcher(options, first, cache, parser);
    w.logMessages(first.messages, []);
    w.options.logger.info(
      { dir: options.dir, version: first.version, peerAuthentications: first.peerAuthentications.length, serviceEntries: first.serviceEntries.length, workloadEntries: first.workloadEntries.length },
      'mesh config loaded',
    );
    await w.watchDir();
    w.armPathCheck();
    return w;
  }

  private armPathCheck(): void {
    if (this.stopped) return;
    this.cancelPathCheck = this.clock.timer(this.options.pathCheckMs ?? CONFIG_PATH_CHECK_MS, () => {
      this.armPathCheck();
      void this.checkPath();
    });
  }

  private async watchDir(): Promise<void> {
    const { dir, logger } = this.options;
    this.watcher?.close();
    this.watcher = undefined;
    this.watchedDir = await dirIdentity(dir);
    if (this.watchedDir === undefined || this.stopped) return;
    try {
      this.watcher = watch(dir, () => this.schedule());
    } catch (err) {
      // Gone again between the stat and the watch: the next path check retries.
      this.watchedDir = undefined;
      logger.warn({ dir, err: err instanceof Error ? err.message : String(err) }, 'cannot watch the config dir yet');
      return;
    }
    this.watcher.on('error', (err) => {
      // Typically the dir was deleted; the path check notices when it is back.
      logger.warn({ dir, err: err.message }, 'config dir watch ended; waiting for the dir to come back');
      this.watcher?.close();
      this.watcher = undefined;
      this.watchedDir = undefined;
    });
  }

  /** A different dir at the path (re-created, or a switched symlink), or the dir gone: re-watch and reload. */
  private async checkPath(): Promise<void> {
    if (this.stopped || this.checkingPath) return;
    this.checkingPath = true;
    try {
      const now = await dirIdentity(this.options.dir);
      if (now === this.watchedDir) return;
      if (now === undefined) {
        this.options.logger.warn({ dir: this.options.dir }, 'config dir is gone; keeping the config in force until it is back');
        this.watcher?.close();
        this.watcher = undefined;
        this.watchedDir = undefined;
        return;
      }
      this.options.logger.info({ dir: this.options.dir }, 'config dir was replaced; watching the new one');
      await this.watchDir();
      this.schedule();
    } finally {
      this.checkingPath = false;
    }
  }

  /** The snapshot in force. */
  get current(): MeshSnapshot {
    return this.snapshot;
  }

  /** The diff of the first snapshot (everything new), for a consumer that starts from nothing. */
  initialDiff(): SnapshotDiff {
    return fullDiff(this.snapshot);
  }

  private schedule(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    if (this.cancelReload === undefined) this.firstEventAt = now;
    else this.cancelReload();
    const debounce = this.options.debounceMs ?? CONFIG_DEBOUNCE_MS;
    const maxDelay = this.options.maxDelayMs ?? CONFIG_DEBOUNCE_MAX_MS;
    const wait = Math.max(0, Math.min(debounce, this.firstEventAt + maxDelay - now));
    this.cancelReload = this.clock.timer(wait, () => {
      this.cancelReload = undefined;
      void this.reload();
    });
  }

  /** Reload now (also what a debounced event runs). Concurrent calls coalesce. */
  async reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.again = false;
        await this.reloadOnce();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async reloadOnce(): Promise<void> {
    const { logger, dir } = this.options;
    let next: MeshSnapshot;
    try {
      next = await loadConfigDir(dir, this.snapshot, this.cache, this.parser);
    } catch (err) {
      if (err instanceof ConfigParseAborted) return;
      // The dir itself is unreadable (removed, permissions): keep everything in force.
      logger.error({ dir, err: err instanceof Error ? err.message : String(err) }, 'cannot read config dir; keeping the config in force');
      return;
    }
    if (this.stopped) return;
    const diff = diffSnapshots(this.snapshot, next);
    if (diff.empty && !diff.messagesChanged) return;
    const previous = this.snapshot;
    this.snapshot = next;
    this.logMessages(next.messages, previous.messages);
    logger.info(
      {
        version: next.version, meshChanged: diff.meshChanged, namespaces: [...diff.namespaces],
        services: [...diff.services], workloads: [...diff.workloads], federatedTrustDomains: [...diff.federatedTrustDomains],
      },
      diff.empty ? 'mesh config messages changed' : 'mesh config changed',
    );
    try {
      this.options.onChange(next, diff);
    } catch (err) {
      logger.error({ err: err instanceof Error ? err.message : String(err) }, 'config change handler failed');
    }
  }

  /** Log messages that are new since the previous snapshot, each with file and line. */
  private logMessages(messages: readonly ConfigMessage[], before: readonly ConfigMessage[]): void {
    const seen = new Set(before.map(messageKey));
    for (const m of messages) {
      if (seen.has(messageKey(m))) continue;
      const fields = { file: m.source.file, line: m.source.line, resource: m.resource };
      if (m.level === 'error') this.options.logger.error(fields, m.message);
      else this.options.logger.warn(fields, m.message);
    }
  }

  /** Stop watching; a reload in progress finishes without publishing. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelReload?.();
    this.cancelReload = undefined;
    this.cancelPathCheck?.();
    this.cancelPathCheck = undefined;
    this.watcher?.close();
    this.watcher = undefined;
    this.parser.close();
    await this.reloading;
  }
}

/** dev:ino of the directory the path leads to (through symlinks); undefined when there is none. */
async function dirIdentity(path: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    return st.isDirectory() ? `${st.dev}:${st.ino}` : undefined;
  } catch {
    return undefined;
  }
}

export function watchConfigDir(options: ConfigWatcherOptions): Promise<ConfigWatcher> {
  return ConfigWatcher.start(options);
}
