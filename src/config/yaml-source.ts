/**
 * YAML with source positions. Every config message names a file and a line, so documents are
 * parsed with the `yaml` package's CST-backed Document API and a LineCounter; a validator
 * reports a field by its path and this module turns the path into the line of that field.
 *
 * Parsing is bounded (yaml-limits.ts), and duplicate keys are found here with one Set per
 * map: the package's own check (`uniqueKeys: true`) compares each key with every earlier key
 * of its map, which is quadratic (40,000 keys took 9 s). The message and position are the
 * package's ("Map keys must be unique" at the repeated key).
 */
import { Composer, LineCounter, isAlias, isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';
import { YAML_LIMITS, depthMessage, readBoundedCst, type YamlLimits } from './yaml-limits.js';

export type FieldPath = readonly (string | number)[];

export interface YamlDocument {
  /** 1-based line where the document's content starts (or its `---`). */
  line: number;
  /** 0-based index of the document in its file. */
  index: number;
  /** The plain value (maps as objects, keys as strings); undefined for an empty document. */
  value: unknown;
  /** Syntax errors of this document: other documents in the file still load. */
  syntaxErrors: { line: number; message: string }[];
  /** The 1-based line of a field; falls back to the closest existing ancestor. */
  lineOf(path: FieldPath): number;
}

export interface ParsedYamlFile {
  file: string;
  documents: YamlDocument[];
  /** Map keys compared for duplicates: one per scalar key, however many keys a map has. */
  keysChecked: number;
}

/** The package's duplicate-key check is off: checkNodes does it in linear time. */
export const COMPOSE_OPTIONS = Object.freeze({ prettyErrors: false, uniqueKeys: false, strict: true });

export const DUPLICATE_KEY_MESSAGE = 'Map keys must be unique';

/** The first line of a yaml error message, without the code-frame the package appends. */
function shortMessage(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

interface Child { node: unknown; keyNode?: unknown }

/**
 * Each map's children by key, built the first time a line is asked of that map: a document
 * with an issue for every key of a large map costs one pass over it, not one per issue.
 */
const childIndex = new WeakMap<object, Map<string, Child>>();

/** Find the child node of a map/sequence node for one path segment (the first of repeated keys). */
function child(node: unknown, key: string | number): Child | undefined {
  if (isMap(node)) {
    let index = childIndex.get(node);
    if (index === undefined) {
      index = new Map();
      for (const pair of node.items) {
        // Only a scalar key can be a field name; a collection used as a key has no path to it.
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        const k = String(pair.key.value);
        if (!index.has(k)) index.set(k, { node: pair.value ?? pair.key, keyNode: pair.key });
      }
      childIndex.set(node, index);
    }
    return index.get(String(key));
  }
  if (isSeq(node) && typeof key === 'number') {
    const item = node.items[key];
    return item === undefined ? undefined : { node: item };
  }
  return undefined;
}

function startOf(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return Array.isArray(range) ? range[0] : undefined;
}

/**
 * Duplicate keys, alias cycles and nesting with aliases expanded, in one walk of a composed
 * document. The walk recurses only as deep as the document is nested (bounded by the syntax
 * tree check); an alias is measured by the height already found for its anchor.
 */
function checkNodes(root: unknown, maxDepth: number, report: (offset: number, message: string) => void): number {
  /** Height of each anchored node once walked; -1 while it is being walked (an alias to it is a cycle). */
  const heights = new Map<unknown, number>();
  /** The node an alias names: the last one with that anchor before it, as the package resolves it. */
  const anchors = new Map<string, unknown>();
  let keysChecked = 0;
  let tooDeep = false;
  const walk = (node: unknown): number => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      const h = target === undefined ? 0 : heights.get(target) ?? 0;
      if (h >= 0) return h;
      report(startOf(node) ?? 0, `alias *${node.source} refers to a collection that contains it`);
      return 0;
    }
    const anchor = (node as { anchor?: unknown } | null)?.anchor;
    if (typeof anchor === 'string') {
      anchors.set(anchor, node);
      heights.set(node, -1);
    }
    let h = 0;
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key: unknown = pair.key;
        // The package's equality: the same scalar value (===), so NaN never repeats and 0 is -0.
        if (isScalar(key) && !Number.isNaN(key.value)) {
          keysChecked++;
          if (seen.has(key.value)) report(startOf(key) ?? 0, DUPLICATE_KEY_MESSAGE);
          else seen.add(key.value);
        }
        h = Math.max(h, walk(key), walk(pair.value));
      }
      h += 1;
    } else if (isSeq(node)) {
      for (const item of node.items) h = Math.max(h, walk(item));
      h += 1;
    }
    if (h > maxDepth && !tooDeep) {
      tooDeep = true;
      report(startOf(node) ?? 0, depthMessage(maxDepth));
    }
    if (typeof anchor === 'string') heights.set(node, h);
    return h;
  };
  walk(root);
  return keysChecked;
}

/** A file refused before composing: one document holding the reason, so the file's objects stay in force. */
function refusedFile(file: string, line: number, message: string): ParsedYamlFile {
  const doc: YamlDocument = { line, index: 0, value: undefined, syntaxErrors: [{ line, message }], lineOf: () => line };
  return { file, documents: [doc], keysChecked: 0 };
}

export function parseYamlFile(file: string, text: string, limits: YamlLimits = YAML_LIMITS): ParsedYamlFile {
  const lineCounter = new LineCounter();
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
  const cst = readBoundedCst(text, lineCounter, limits);
  if (cst.refused) return refusedFile(file, lineAt(cst.refused.offset), cst.refused.message);
  const docs: Document.Parsed[] = Array.from(new Composer(COMPOSE_OPTIONS).compose(cst.tokens));
  let keysChecked = 0;

  const documents: YamlDocument[] = docs.map((doc, index) => {
    const contents = doc.contents;
    const docStart = startOf(contents) ?? doc.range[0];
    const found: { offset: number; message: string }[] = [];
    keysChecked += checkNodes(contents, limits.maxDepth, (offset, message) => found.push({ offset, message }));
    found.sort((a, b) => a.offset - b.offset);
    const syntaxErrors = mergeByOffset(doc.errors.map((e) => ({ offset: e.pos[0], message: shortMessage(e.message) })), found)
      .map((e) => ({ line: lineAt(e.offset), message: e.message }));
    let value: unknown;
    if (syntaxErrors.length === 0 && contents !== null) {
      try {
        value = doc.toJS({ maxAliasCount: 100 });
      } catch (err) {
        syntaxErrors.push({ line: lineAt(docStart), message: err instanceof Error ? err.message : String(err) });
      }
    }
    return {
      line: lineAt(docStart),
      index,
      value,
      syntaxErrors,
      lineOf(path: FieldPath): number {
        let node: unknown = contents;
        let best = docStart;
        for (const segment of path) {
          const next = child(node, segment);
          if (next === undefined) break;
          // A key's line is where a reader looks for the field, even when its value is on later lines.
          best = startOf(next.keyNode) ?? startOf(next.node) ?? best;
          node = next.node;
        }
        return lineAt(best);
      },
    };
  });
  return { file, documents, keysChecked };
}

/**
 * The package's errors in their order, each of ours placed before the first of theirs that
 * starts after it: where the package's own check would have reported it while composing.
 */
function mergeByOffset<E extends { offset: number }>(theirs: E[], ours: E[]): E[] {
  if (ours.length === 0) return theirs;
  const out: E[] = [];
  let i = 0;
  for (const e of theirs) {
    while (i < ours.length && ours[i]!.offset < e.offset) out.push(ours[i++]!);
    out.push(e);
  }
  while (i < ours.length) out.push(ours[i++]!);
  return out;
}
