/**
 * Bounds on what one config file may cost to parse, checked before the `yaml` package builds
 * anything big from it.
 *
 * The `yaml` package parses at about 1 MB/s and its syntax tree holds ~1 KB per token, so
 * the cost of a file is set by its number of tokens (and documents), not its bytes: 1 MB of
 * `[1,1,1,…]` is 500,000 tokens, 4 s and 500 MB. Its composer also recurses once per nesting level: about a
 * thousand levels (a few KB of `[[[[…`) overflow the stack, and overflowing it twice in one
 * process has aborted Node 20 outright ("RegExpCompiler Allocation failed"). And it resolves
 * each alias by scanning the document's anchors, quadratic in the number of aliases.
 *
 * So the text is lexed once, counting tokens and aliases as they come (the lexer holds no
 * tree), and fed to the parser token by token; the syntax tree is then measured for depth
 * before anything is composed from it. A file over a bound is refused whole.
 */
import { CST, Lexer, LineCounter, Parser } from 'yaml';

export interface YamlLimits {
  /** Tokens per file: scalars, keys, aliases, anchors, tags, indicators (`-`, `:`, `,`, brackets). */
  maxTokens: number;
  /** Documents per file. */
  maxDocuments: number;
  /** Nesting of collections, aliases expanded. */
  maxDepth: number;
  /** Alias nodes (`*name`) per file. */
  maxAliases: number;
}

/**
 * - maxTokens 200,000: Istio objects without comments spend about 6 bytes a token, so a file of
 *   the largest size read (CONFIG_READ_LIMITS, 1 MiB) of them is ~175,000 tokens; at the
 *   bound the densest YAML parses in 1.5-3.5 s (on a worker thread) in ~150 MB of heap.
 * - maxDocuments 10,000: a document costs far more than a token (~100 µs and ~10 KB); 1 MiB of
 *   WorkloadEntries is ~5,000 documents, and `kubectl get -o yaml` writes one List document.
 * - maxDepth 100: the deepest field of an Istio object is a few levels down (a `kubectl get -o
 *   yaml` List of ServiceEntries reaches spec.endpoints[].labels at 7); the composer's stack
 *   holds well over 100.
 * - maxAliases 100: Kubernetes never writes aliases, a hand-written file uses a few.
 */
export const YAML_LIMITS: YamlLimits = Object.freeze({ maxTokens: 200_000, maxDocuments: 10_000, maxDepth: 100, maxAliases: 100 });

/** What the lexer yields that is not a token of the document itself. */
const NOT_COUNTED = new Set(['space', 'newline', 'comment', 'doc-mode', 'byte-order-mark']);

export type BoundedCst =
  | { tokens: CST.Token[]; refused?: undefined }
  | { refused: { offset: number; message: string }; tokens?: undefined };

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * The syntax tree of `text` (as `new Parser().parse(text)` yields it, with `lineCounter`
 * fed), or the offset and reason where the text went past a bound.
 */
export function readBoundedCst(text: string, lineCounter: LineCounter, limits: YamlLimits = YAML_LIMITS): BoundedCst {
  const parser = new Parser(lineCounter.addNewLine);
  lineCounter.addNewLine(0); // what Parser#parse does first
  const tokens: CST.Token[] = [];
  let counted = 0;
  let aliases = 0;
  let documents = 0;
  let scalarText = false;
  const take = (token: CST.Token): boolean => {
    if (token.type === 'document' && ++documents > limits.maxDocuments) return false;
    tokens.push(token);
    return true;
  };
  const tooManyDocuments = (offset: number): BoundedCst => ({
    refused: { offset, message: `more than ${fmt(limits.maxDocuments)} documents; meshd reads at most ${fmt(limits.maxDocuments)} per file` },
  });
  for (const lexeme of new Lexer().lex(text)) {
    const type = CST.tokenType(lexeme);
    // A plain or block scalar is a `scalar` marker, then its text: the marker counts, the text does not.
    const counts = !scalarText && (type === null || !NOT_COUNTED.has(type));
    scalarText = type === 'scalar';
    if (counts) {
      if (++counted > limits.maxTokens) {
        return { refused: { offset: parser.offset, message: `more than ${fmt(limits.maxTokens)} YAML tokens (keys, values, indicators); meshd reads at most ${fmt(limits.maxTokens)} per file` } };
      }
      if (type === 'alias' && ++aliases > limits.maxAliases) {
        return { refused: { offset: parser.offset, message: `more than ${fmt(limits.maxAliases)} aliases; meshd reads at most ${fmt(limits.maxAliases)} per file` } };
      }
    }
    for (const token of parser.next(lexeme)) if (!take(token)) return tooManyDocuments(token.offset);
  }
  for (const token of parser.end()) if (!take(token)) return tooManyDocuments(token.offset);
  const deep = firstTooDeep(tokens, limits.maxDepth);
  if (deep !== undefined) return { refused: { offset: deep, message: depthMessage(limits.maxDepth) } };
  return { tokens };
}

export function depthMessage(maxDepth: number): string {
  return `collections nested more than ${maxDepth} levels deep (aliases expanded); meshd reads at most ${maxDepth}`;
}

/** Offset of the first collection nested deeper than `maxDepth`; iterative, so any depth is measured safely. */
function firstTooDeep(tokens: readonly CST.Token[], maxDepth: number): number | undefined {
  const stack: { token: CST.Token; depth: number }[] = [];
  for (let i = tokens.length - 1; i >= 0; i--) stack.push({ token: tokens[i]!, depth: 0 });
  while (stack.length > 0) {
    const { token, depth } = stack.pop()!;
    switch (token.type) {
      case 'document':
        if (token.value) stack.push({ token: token.value, depth });
        break;
      case 'block-map':
      case 'block-seq':
      case 'flow-collection': {
        if (depth + 1 > maxDepth) return token.offset;
        for (let i = token.items.length - 1; i >= 0; i--) {
          const item = token.items[i]!;
          if (item.value) stack.push({ token: item.value, depth: depth + 1 });
          if (item.key) stack.push({ token: item.key, depth: depth + 1 });
        }
        break;
      }
      default:
        break;
    }
  }
  return undefined;
}
