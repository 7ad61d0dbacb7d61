import type { ConfigDocument } from '../store/config-repository.js';

export type DocumentChange =
  | { kind: 'added'; name: string; text: string }
  | { kind: 'removed'; name: string; text: string }
  | { kind: 'changed'; name: string; before: string; after: string };

/** What replacing `stored` with `local` changes, document by document, by name. */
export function documentChanges(stored: readonly ConfigDocument[], local: readonly ConfigDocument[]): DocumentChange[] {
  const before = new Map(stored.map((d) => [d.name, d.text]));
  const after = new Map(local.map((d) => [d.name, d.text]));
  const names = [...new Set([...before.keys(), ...after.keys()])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const changes: DocumentChange[] = [];
  for (const name of names) {
    const b = before.get(name);
    const a = after.get(name);
    if (b === undefined) changes.push({ kind: 'added', name, text: a! });
    else if (a === undefined) changes.push({ kind: 'removed', name, text: b });
    else if (a !== b) changes.push({ kind: 'changed', name, before: b, after: a });
  }
  return changes;
}

/**
 * A unified-diff-style rendering. For a changed document the lines both versions share at the
 * start and end are left out and the rest is shown as one hunk: exact, if not always minimal,
 * and linear in the document's size.
 */
export function formatDocumentDiff(change: DocumentChange, storeVersion: number, dir: string): string {
  const from = `--- store/${change.name} (version ${storeVersion})\n`;
  const to = `+++ ${dir.replace(/\/+$/, '')}/${change.name}\n`;
  if (change.kind === 'added') return `--- /dev/null\n${to}${prefixed(lines(change.text), '+')}`;
  if (change.kind === 'removed') return `${from}+++ /dev/null\n${prefixed(lines(change.text), '-')}`;
  const a = lines(change.before);
  const b = lines(change.after);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  const removed = a.slice(start, a.length - end);
  const added = b.slice(start, b.length - end);
  const hunk = `@@ -${start + 1},${removed.length} +${start + 1},${added.length} @@\n`;
  return `${from}${to}${hunk}${prefixed(removed, '-')}${prefixed(added, '+')}`;
}

function lines(text: string): string[] {
  const all = text.split('\n');
  if (all.at(-1) === '') all.pop();
  return all;
}

function prefixed(list: readonly string[], mark: string): string {
  return list.map((l) => `${mark}${l}\n`).join('');
}
