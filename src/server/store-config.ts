import type { Logger } from '../common/logger.js';
import { buildSnapshot, diffSnapshots, FileParseCache, type ConfigFile, type MeshSnapshot, type SnapshotDiff } from '../config/index.js';
import { ConfigParseAborted, OffThreadParser, type ConfigParser } from '../config/off-thread-parse.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { ConfigRepository, ConfigSet } from '../store/config-repository.js';
import { StoreView } from '../store/view.js';

export interface StoreConfigOptions {
  config: ConfigRepository;
  feed: ChangeFeed;
  logger: Logger;
  /** The mesh's trust domain while the store holds no config. */
  trustDomain: string;
  onChange: (snapshot: MeshSnapshot, diff: SnapshotDiff) => void;
}

/**
 * The mesh config as `meshd config apply` put it in the store, followed through the change
 * feed: each new set is built into a snapshot as a config dir's files would be (documents are
 * the files, named as they were), and a change is handed on with its diff, so only the proxies
 * it affects are pushed. While the store is away the set last read stays in force.
 *
 * The snapshot's version is the set's version in the store, so every replica numbers the same
 * config the same way.
 */
export class StoreConfigSource {
  private snapshot: MeshSnapshot;
  private readonly cache = new FileParseCache();
  private readonly parser: ConfigParser;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(private readonly options: StoreConfigOptions, private readonly view: StoreView<ConfigSet | undefined>) {
    this.snapshot = emptySnapshot(options.trustDomain);
    this.parser = new OffThreadParser({ logger: options.logger });
  }

  static async start(options: StoreConfigOptions): Promise<StoreConfigSource> {
    const view = new StoreView<ConfigSet | undefined>({
      feed: options.feed, topic: 'config', load: () => options.config.current(), versionOf: (set) => set?.version ?? 0, logger: options.logger,
    });
    const source = new StoreConfigSource(options, view);
    const first = await view.start();
    if (first) {
      source.snapshot = await source.build(first);
      options.logger.info({ version: first.version, documents: first.documents.length, appliedBy: first.appliedBy }, 'mesh config loaded from the store');
    } else {
      options.logger.info('the store holds no mesh config yet (meshd config apply -f DIR puts one there); serving an empty mesh');
    }
    view.onUpdate((set) => {
      if (set) this.enqueue(source, set);
    });
    return source;
  }

  private static enqueue(source: StoreConfigSource, set: ConfigSet): void {
    source.queue = source.queue.then(() => source.adopt(set));
  }

  get current(): MeshSnapshot {
    return this.snapshot;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.view.close();
    this.parser.close();
    await this.queue;
  }

  private async adopt(set: ConfigSet): Promise<void> {
    let next: MeshSnapshot;
    try {
      next = await this.build(set);
    } catch (err) {
      if (!(err instanceof ConfigParseAborted)) this.options.logger.error({ version: set.version, err: (err as Error).message }, 'cannot build the mesh config from the store; keeping the config in force');
      return;
    }
    if (this.stopped) return;
    const diff = diffSnapshots(this.snapshot, next);
    this.snapshot = next;
    this.options.logger.info({ version: set.version, appliedBy: set.appliedBy, meshChanged: diff.meshChanged, namespaces: [...diff.namespaces] }, 'mesh config changed in the store');
    if (diff.empty && !diff.messagesChanged) return;
    try {
      this.options.onChange(next, diff);
    } catch (err) {
      this.options.logger.error({ err: (err as Error).message }, 'config change handler failed');
    }
  }

  private async build(set: ConfigSet): Promise<MeshSnapshot> {
    const files: ConfigFile[] = set.documents.map((d) => ({ path: d.name, text: d.text }));
    await this.parser.parseInto(files, this.cache);
    const built = buildSnapshot(files, this.snapshot, this.cache);
    for (const m of built.messages) {
      const fields = { file: m.source.file, line: m.source.line, resource: m.resource, version: set.version };
      if (m.level === 'error') this.options.logger.error(fields, m.message);
    }
    return { ...built, version: set.version };
  }
}

export function emptySnapshot(trustDomain: string): MeshSnapshot {
  const empty = buildSnapshot([]);
  return { ...empty, mesh: { ...empty.mesh, trustDomain } };
}
