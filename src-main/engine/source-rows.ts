import type { SourceItem } from './worker-protocol.ts';

/** The prompts one source pass runs, and where each item is read out. */
export interface SourceRows {
  /** The distinct prompts, each as long as the longest item it serves. */
  readonly rows: number[][];
  /** [items] the row each item is read from (at the item's own position). */
  readonly rowOf: number[];
}

interface TrieNode {
  readonly next: Map<number, TrieNode>;
  /** A row whose tokens start with the path to this node. */
  readonly row: number;
}

/**
 * Attention is causal, so an item's residuals at its position depend only on its tokens up to that
 * position: any prompt that starts with those tokens gives the same numbers there. Items are taken
 * longest first; each is read from a row that already starts with its tokens, or starts a new row.
 * Several positions of one prompt (or prompts cut at different positions) thus run once.
 */
export function planSourceRows(items: readonly SourceItem[]): SourceRows {
  const root: TrieNode = { next: new Map(), row: -1 };
  const rows: number[][] = [];
  const rowOf = new Array<number>(items.length);
  const order = items.map((_, i) => i).sort((a, b) => items[b].position - items[a].position || a - b);
  for (const i of order) {
    const { tokens, position } = items[i];
    let node = root;
    let t = 0;
    for (; t <= position; t++) {
      const child = node.next.get(tokens[t]);
      if (!child) break;
      node = child;
    }
    if (t > position) {
      rowOf[i] = node.row;
      continue;
    }
    const row = rows.length;
    rows.push(tokens.slice(0, position + 1));
    for (; t <= position; t++) {
      const child: TrieNode = { next: new Map(), row };
      node.next.set(tokens[t], child);
      node = child;
    }
    rowOf[i] = row;
  }
  return { rows, rowOf };
}
