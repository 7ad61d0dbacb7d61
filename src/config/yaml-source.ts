/**
 * YAML with source positions. Every config message names a file and a line, so documents are
 * parsed with the `yaml` package's CST-backed Document API and a LineCounter; a validator
 * reports a field by its path and this module turns the path into the line of that field.
 */
import { LineCounter, isMap, isPair, isScalar, isSeq, parseAllDocuments, type Document, type Node } from 'yaml';

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
}

/** The first line of a yaml error message, without the code-frame the package appends. */
function shortMessage(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

/** Find the child node of a map/sequence node for one path segment. */
function child(node: unknown, key: string | number): { node: unknown; keyNode?: unknown } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const k = isScalar(pair.key) ? pair.key.value : pair.key;
      if (String(k) === String(key)) return { node: pair.value ?? pair.key, keyNode: pair.key };
    }
    return undefined;
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

export function parseYamlFile(file: string, text: string): ParsedYamlFile {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const docs: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;

  const documents: YamlDocument[] = docs.map((doc, index) => {
    const contents = doc.contents;
    const docStart = startOf(contents) ?? doc.range[0];
    const syntaxErrors = doc.errors.map((e) => ({
      line: e.linePos?.[0]?.line ?? lineAt(e.pos[0]),
      message: shortMessage(e.message),
    }));
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
  return { file, documents };
}
