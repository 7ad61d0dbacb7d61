/**
 * From the text of the files in a config dir (and the previous snapshot) to a new immutable
 * MeshSnapshot. Pure: the caller reads the files.
 *
 * Keeping the last good version (nothing bad on disk ever empties a proxy's config):
 * - a document that fails validation keeps the previous snapshot's object of the same
 *   kind/namespace/name in force;
 * - a document whose identity cannot be read (YAML syntax error, no kind, unknown kind, no name)
 *   could be any of the objects its file held before, so every object that came from that file
 *   and is not defined again elsewhere stays in force;
 * - a mesh config document that fails keeps the previous mesh settings.
 * Removing a document or a file removes its objects: that is a deliberate edit.
 */
import { basename } from 'node:path';
import { Issues, Reader, isPlainMap, type YamlMap } from './fields.js';
import {
  CLUSTER_SCOPED_KINDS, KUBERNETES_KINDS, SERVED_VERSIONS, UNSUPPORTED_ISTIO_KINDS, checkTopLevel, readEnvelope, readMetadata,
  type ResourceKind,
} from './envelope.js';
import {
  DEFAULT_MESH_SETTINGS, type AuthorizationPolicy, type ConfigMessage, type DestinationRule, type FederatedTrustDomain, type MeshSettings,
  type MeshSnapshot, type ObjectMeta, type PeerAuthentication, type ServiceEntry, type WorkloadEntry,
} from './model.js';
import { parseFederatedTrustDomain } from './parse-federated-trust-domain.js';
import { federationConflicts } from './federation-checks.js';
import { parseMeshConfig } from './parse-mesh-config.js';
import { parsePeerAuthentication } from './parse-peer-authentication.js';
import { parseAuthorizationPolicy } from './parse-authorization-policy.js';
import { parseDestinationRule } from './parse-destination-rule.js';
import { parseServiceEntry } from './parse-service-entry.js';
import { parseWorkloadEntry } from './parse-workload-entry.js';
import { parseYamlFile, type FieldPath, type YamlDocument } from './yaml-source.js';
import { crossReferenceWarnings } from './cross-checks.js';

export type MeshResource = PeerAuthentication | AuthorizationPolicy | ServiceEntry | WorkloadEntry | DestinationRule | FederatedTrustDomain;

export interface ConfigFile {
  path: string;
  text?: string;
  /** Set when the file could not be read (permissions, vanished mid-read). */
  readError?: string;
  /**
   * Set when the file was deliberately not read: over a size bound (an error: the objects it
   * held stay in force), or a symlink leading outside the config dir (a warning: skipped).
   */
  notRead?: { level: ConfigMessage['level']; message: string };
}

/** Files named like this hold the mesh config as a plain MeshConfig document (pilot-discovery --meshConfig). */
export const MESH_CONFIG_FILE_NAMES = ['mesh.yaml', 'mesh.yml'];

/** "Kind/namespace/name", or "Kind/name" for a cluster-scoped kind (namespace ''). */
export function resourceKey(r: { kind: string; meta: { namespace: string; name: string } }): string {
  return r.meta.namespace === '' ? `${r.kind}/${r.meta.name}` : `${r.kind}/${r.meta.namespace}/${r.meta.name}`;
}

interface Entry {
  key: string;
  resource?: MeshResource;
  source: { file: string; line: number };
}

interface MeshCandidate {
  settings?: MeshSettings;
  source: { file: string; line: number };
}

class Collector {
  readonly messages: ConfigMessage[] = [];
  readonly entries: Entry[] = [];
  readonly meshCandidates: MeshCandidate[] = [];
  /** Files holding a document whose identity could not be read. */
  readonly unidentifiedFiles = new Set<string>();

  add(level: ConfigMessage['level'], file: string, line: number, message: string, resource?: string): void {
    const m: ConfigMessage = { level, message, source: { file, line } };
    if (resource !== undefined) m.resource = resource;
    this.messages.push(m);
  }

  flush(issues: Issues, doc: YamlDocument, file: string, resource?: string, lineOf: (p: FieldPath) => number = doc.lineOf): void {
    for (const i of issues.list) this.add(i.level, file, lineOf(i.path), i.message, resource);
  }
}

function meshFromDocument(c: Collector, file: string, doc: YamlDocument, value: unknown, lineOf: (p: FieldPath) => number, line: number): void {
  const issues = new Issues();
  const settings = parseMeshConfig(value, new Reader(issues));
  c.flush(issues, doc, file, 'MeshConfig', lineOf);
  c.meshCandidates.push(issues.hasErrors ? { source: { file, line } } : { settings, source: { file, line } });
}

/** The Istio ConfigMap form (`kubectl get cm istio -n istio-system -o yaml`): MeshConfig YAML under data.mesh. */
function meshFromConfigMap(c: Collector, file: string, doc: YamlDocument, m: YamlMap): boolean {
  const data = isPlainMap(m.data) ? m.data : undefined;
  if (typeof data?.mesh !== 'string') return false;
  const inner = parseYamlFile(file, data.mesh).documents[0];
  const keyLine = doc.lineOf(['data', 'mesh']);
  // Block scalar (`mesh: |`): inner line n sits n lines below the key.
  const lineOf = (p: FieldPath): number => keyLine + (inner ? inner.lineOf(p) : 1);
  if (inner && inner.syntaxErrors.length > 0) {
    for (const e of inner.syntaxErrors) c.add('error', file, keyLine + e.line, e.message, 'MeshConfig');
    c.meshCandidates.push({ source: { file, line: doc.line } });
    return true;
  }
  meshFromDocument(c, file, doc, inner?.value ?? {}, lineOf, doc.line);
  return true;
}

function readDocument(c: Collector, file: string, doc: YamlDocument, isMeshFile: boolean): void {
  if (doc.syntaxErrors.length > 0) {
    for (const e of doc.syntaxErrors) c.add('error', file, e.line, e.message);
    c.unidentifiedFiles.add(file);
    if (isMeshFile) c.meshCandidates.push({ source: { file, line: doc.line } });
    return;
  }
  const value = doc.value;
  if (value === undefined || value === null) return; // empty document (e.g. a trailing `---`)
  if (!isPlainMap(value)) {
    c.add('error', file, doc.line, 'document must be a map with apiVersion, kind, metadata and spec');
    c.unidentifiedFiles.add(file);
    return;
  }
  if (isMeshFile && value.kind === undefined && value.apiVersion === undefined) {
    meshFromDocument(c, file, doc, value, doc.lineOf, doc.line);
    return;
  }

  const issues = new Issues();
  const r = new Reader(issues);
  const env = readEnvelope(value, r);
  if (env.kind === undefined || env.apiVersion === undefined) {
    // kubectl's wording ("error validating data: [apiVersion not set, kind not set]").
    const reported = (field: string): boolean => issues.list.some((i) => i.path[0] === field);
    if (env.apiVersion === undefined && !reported('apiVersion')) issues.error(['apiVersion'], 'apiVersion not set');
    if (env.kind === undefined && !reported('kind')) issues.error(['kind'], 'kind not set');
    c.flush(issues, doc, file);
    c.unidentifiedFiles.add(file);
    return;
  }
  const { kind, apiVersion } = env;
  if (kind === 'List' && apiVersion === 'v1' && Array.isArray(value.items)) {
    // `kubectl get pa,se,we -A -o yaml` prints one v1 List: read its items as documents.
    value.items.forEach((item, i) => readDocument(c, file, itemDocument(doc, item, i), false));
    return;
  }
  if (kind === 'ConfigMap' && apiVersion === 'v1') {
    if (!meshFromConfigMap(c, file, doc, value)) c.add('warning', file, doc.line, 'ConfigMap without a data.mesh key is ignored by meshd');
    return;
  }
  if (UNSUPPORTED_ISTIO_KINDS.includes(kind) && apiVersion.includes('istio.io/')) {
    c.add('warning', file, doc.line, `${kind} is not supported by meshd and is ignored`, `${kind}/${nsName(value)}`);
    return;
  }
  if (KUBERNETES_KINDS.includes(kind) && !apiVersion.includes('.')) {
    c.add('warning', file, doc.line, `${kind} is a Kubernetes kind; meshd reads its registry from ServiceEntry and WorkloadEntry and ignores it`, `${kind}/${nsName(value)}`);
    return;
  }
  const served = (SERVED_VERSIONS as Record<string, readonly string[]>)[kind];
  if (served === undefined || !served.includes(apiVersion)) {
    const hint = served
      ? ` (meshd reads ${kind} as ${served.join(', ')})`
      : ' (meshd reads PeerAuthentication, AuthorizationPolicy, ServiceEntry, WorkloadEntry, DestinationRule, ClusterFederatedTrustDomain and MeshConfig)';
    c.add('error', file, doc.lineOf(['kind']), `no matches for kind ${JSON.stringify(kind)} in version ${JSON.stringify(apiVersion)}${hint}`, `${kind}/${nsName(value)}`);
    c.unidentifiedFiles.add(file);
    return;
  }

  checkTopLevel(value, r);
  const clusterScoped = CLUSTER_SCOPED_KINDS.includes(kind as ResourceKind);
  const metaFields = readMetadata(value, r, clusterScoped ? kind : undefined);
  const resourceName = resourceKey({ kind, meta: { namespace: metaFields.namespace, name: metaFields.name ?? '' } });
  const meta: ObjectMeta = {
    name: metaFields.name ?? '',
    namespace: metaFields.namespace,
    labels: metaFields.labels,
    annotations: metaFields.annotations,
    source: { file, line: doc.line },
  };
  if (metaFields.creationTimestamp !== undefined) meta.creationTimestamp = metaFields.creationTimestamp;

  let resource: MeshResource;
  switch (kind as ResourceKind) {
    case 'PeerAuthentication': resource = parsePeerAuthentication(value.spec, r, meta); break;
    case 'ServiceEntry': resource = parseServiceEntry(value.spec, r, meta); break;
    case 'WorkloadEntry': resource = parseWorkloadEntry(value.spec, r, meta); break;
    case 'AuthorizationPolicy': resource = parseAuthorizationPolicy(value.spec, r, meta); break;
    case 'DestinationRule': resource = parseDestinationRule(value.spec, r, meta); break;
    case 'ClusterFederatedTrustDomain': resource = parseFederatedTrustDomain(value.spec, r, meta); break;
  }
  c.flush(issues, doc, file, resourceName);
  if (metaFields.name === undefined) {
    c.unidentifiedFiles.add(file);
    return;
  }
  const entry: Entry = { key: resourceName, source: { file, line: doc.line } };
  if (!issues.hasErrors) entry.resource = Object.freeze(resource) as MeshResource;
  c.entries.push(entry);
}

/** An item of a v1 List seen as a document of its own, its lines still those of the file. */
function itemDocument(list: YamlDocument, value: unknown, i: number): YamlDocument {
  return {
    line: list.lineOf(['items', i]),
    index: list.index,
    value,
    syntaxErrors: [],
    lineOf: (p: FieldPath) => list.lineOf(['items', i, ...p]),
  };
}

function nsName(doc: YamlMap): string {
  const m = isPlainMap(doc.metadata) ? doc.metadata : {};
  const name = typeof m.name === 'string' ? m.name : '';
  if (CLUSTER_SCOPED_KINDS.includes(doc.kind as ResourceKind)) return name;
  const ns = typeof m.namespace === 'string' && m.namespace !== '' ? m.namespace : 'default';
  return `${ns}/${name}`;
}

function where(s: { file: string; line: number }): string {
  return `${s.file}:${s.line}`;
}

function byFileLine(a: ConfigMessage, b: ConfigMessage): number {
  if (a.source.file !== b.source.file) return a.source.file < b.source.file ? -1 : 1;
  return a.source.line - b.source.line;
}

function byNamespaceName(a: MeshResource, b: MeshResource): number {
  return a.meta.namespace === b.meta.namespace ? (a.meta.name < b.meta.name ? -1 : a.meta.name > b.meta.name ? 1 : 0) : a.meta.namespace < b.meta.namespace ? -1 : 1;
}

/** What one file contributes; depends on nothing but the file's path and text. */
export interface FileResult {
  messages: ConfigMessage[];
  entries: Entry[];
  meshCandidates: MeshCandidate[];
  unidentified: boolean;
}

/** How a file that meshd itself failed to read is reported (never expected: the fuzz target checks). */
export const UNEXPECTED_PARSE_FAILURE = 'cannot parse file (an unexpected failure in meshd)';

export function parseConfigFile(f: ConfigFile): FileResult {
  const c = new Collector();
  if (f.notRead?.level === 'warning') {
    c.add('warning', f.path, 1, f.notRead.message); // skipped, as if it were not there
  } else if (f.notRead !== undefined || f.text === undefined) {
    return unreadFile(f.path, f.notRead?.message ?? `cannot read file: ${f.readError ?? 'unknown error'}`);
  } else {
    const isMeshFile = MESH_CONFIG_FILE_NAMES.includes(basename(f.path));
    try {
      for (const doc of parseYamlFile(f.path, f.text).documents) readDocument(c, f.path, doc, isMeshFile);
    } catch (err) {
      // A failure of meshd's own reading, not of the file: the file's objects stay, the rest applies.
      return unreadFile(f.path, `${UNEXPECTED_PARSE_FAILURE}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { messages: c.messages, entries: c.entries, meshCandidates: c.meshCandidates, unidentified: c.unidentifiedFiles.size > 0 };
}

/**
 * A file whose content is unknown (unreadable, refused, or its parse failed): reported, and
 * like a document that cannot be read, it keeps every object it held in force (and the mesh
 * settings, for a mesh config file).
 */
export function unreadFile(file: string, message: string): FileResult {
  const source = { file, line: 1 };
  return {
    messages: [{ level: 'error', message, source }],
    entries: [],
    meshCandidates: MESH_CONFIG_FILE_NAMES.includes(basename(file)) ? [{ source }] : [],
    unidentified: true,
  };
}

/**
 * Parsed files by path and text, so a reload re-parses only the files that changed (YAML
 * parsing dominates a reload: about 0.2 ms per document). Unchanged files also yield the very
 * same frozen objects, which makes the diff cheap.
 */
export class FileParseCache {
  private readonly byPath = new Map<string, { text: string; result: FileResult }>();

  get(f: ConfigFile): FileResult | undefined {
    const hit = this.byPath.get(f.path);
    return hit !== undefined && f.text !== undefined && hit.text === f.text ? hit.result : undefined;
  }

  set(f: ConfigFile, result: FileResult): void {
    if (f.text === undefined) this.byPath.delete(f.path);
    else this.byPath.set(f.path, { text: f.text, result });
  }

  /** Forget files that are gone. */
  retain(paths: readonly string[]): void {
    const keep = new Set(paths);
    for (const p of this.byPath.keys()) if (!keep.has(p)) this.byPath.delete(p);
  }
}

export function buildSnapshot(files: readonly ConfigFile[], previous?: MeshSnapshot, cache?: FileParseCache): MeshSnapshot {
  const c = new Collector();
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  for (const f of sorted) {
    const r = cache?.get(f) ?? parseConfigFile(f);
    cache?.set(f, r);
    c.messages.push(...r.messages);
    c.entries.push(...r.entries);
    c.meshCandidates.push(...r.meshCandidates);
    if (r.unidentified) c.unidentifiedFiles.add(f.path);
  }
  cache?.retain(sorted.map((f) => f.path));

  // Previous objects by key, to keep the last good version.
  const prevByKey = new Map<string, MeshResource>();
  if (previous) {
    const kinds = [
      previous.peerAuthentications, previous.authorizationPolicies, previous.serviceEntries, previous.workloadEntries, previous.destinationRules,
      previous.federatedTrustDomains,
    ];
    for (const r of kinds.flat()) prevByKey.set(resourceKey(r), r);
  }

  const resolved = new Map<string, MeshResource>();
  const defined = new Map<string, Entry>();
  for (const e of c.entries) {
    const first = defined.get(e.key);
    if (first) {
      c.add('error', e.source.file, e.source.line, `${e.key} is already defined at ${where(first.source)}; this definition is ignored`, e.key);
      continue;
    }
    defined.set(e.key, e);
    if (e.resource) {
      resolved.set(e.key, e.resource);
    } else {
      const kept = prevByKey.get(e.key);
      if (kept) {
        resolved.set(e.key, kept);
        c.add('warning', e.source.file, e.source.line, `keeping the last good version of ${e.key} (loaded from ${where(kept.meta.source)}) until this document is fixed`, e.key);
      }
    }
  }
  for (const [key, kept] of prevByKey) {
    if (resolved.has(key) || defined.has(key) || !c.unidentifiedFiles.has(kept.meta.source.file)) continue;
    resolved.set(key, kept);
    c.add('warning', kept.meta.source.file, kept.meta.source.line, `keeping the last good version of ${key}: ${kept.meta.source.file} has a document that cannot be read`, key);
  }

  let mesh: MeshSettings = DEFAULT_MESH_SETTINGS;
  const [firstMesh, ...otherMesh] = c.meshCandidates;
  for (const m of otherMesh) c.add('error', m.source.file, m.source.line, `mesh config is already defined at ${where(firstMesh!.source)}; this one is ignored`, 'MeshConfig');
  if (firstMesh?.settings) mesh = firstMesh.settings;
  else if (firstMesh && previous) {
    mesh = previous.mesh;
    c.add('warning', firstMesh.source.file, firstMesh.source.line, 'keeping the last good mesh config until this document is fixed', 'MeshConfig');
  }

  const all = [...resolved.values()];
  const peerAuthentications = all.filter((r): r is PeerAuthentication => r.kind === 'PeerAuthentication').sort(byNamespaceName);
  const serviceEntries = all.filter((r): r is ServiceEntry => r.kind === 'ServiceEntry').sort(byNamespaceName);
  const workloadEntries = all.filter((r): r is WorkloadEntry => r.kind === 'WorkloadEntry').sort(byNamespaceName);
  const authorizationPolicies = all.filter((r): r is AuthorizationPolicy => r.kind === 'AuthorizationPolicy').sort(byNamespaceName);
  const destinationRules = all.filter((r): r is DestinationRule => r.kind === 'DestinationRule').sort(byNamespaceName);
  const partial = { mesh, peerAuthentications, serviceEntries, workloadEntries, authorizationPolicies, destinationRules };
  c.messages.push(...crossReferenceWarnings(partial));
  const federation = federationConflicts(mesh, all.filter((r): r is FederatedTrustDomain => r.kind === 'ClusterFederatedTrustDomain'));
  c.messages.push(...federation.messages);

  return Object.freeze({
    version: (previous?.version ?? 0) + 1,
    mesh: Object.freeze({ ...mesh }),
    peerAuthentications: Object.freeze(peerAuthentications),
    serviceEntries: Object.freeze(serviceEntries),
    workloadEntries: Object.freeze(workloadEntries),
    authorizationPolicies: Object.freeze(authorizationPolicies),
    destinationRules: Object.freeze(destinationRules),
    federatedTrustDomains: Object.freeze(federation.accepted),
    messages: Object.freeze(c.messages.sort(byFileLine)),
  });
}
