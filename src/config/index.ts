/** The mesh config's public API: load, watch, diff, message formatting (registry queries: src/mesh). */
export * from './model.js';
export { buildSnapshot, FileParseCache, resourceKey, MESH_CONFIG_FILE_NAMES, type ConfigFile, type MeshResource } from './build-snapshot.js';
export { loadConfigDir, readConfigFiles, isConfigFileName } from './load-config-dir.js';
export { ConfigWatcher, watchConfigDir, type ConfigWatcherOptions } from './watcher.js';
export { diffSnapshots, fullDiff, type SnapshotDiff } from './diff.js';
export { formatMessage, countLevels } from './format.js';
