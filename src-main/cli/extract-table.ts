import type { ExtractView } from '../api/contract.ts';

/**
 * The terminal view of one extraction: per layer, each technique's top-k, ✓ where top-1 is the
 * model's own. Token texts are shown as JSON strings so spaces and newlines are visible; other
 * characters (é, 東京) stay as they are.
 */
export function printExtraction(view: ExtractView): void {
  const show = (text: string) => JSON.stringify(text);
  const context = view.tokens.slice(Math.max(0, view.position - 8), view.position + 1).map((t) => t.text).join('');
  console.log(`position ${view.position} of ${view.tokens.length} tokens: …${show(context)}`);
  console.log(`model's own top-1 there: ${show(view.reference.text)} (id ${view.reference.id})\n`);
  const ids = view.techniques.map((t) => t.id);
  const width = Math.max(...ids.map((t) => t.length));
  for (const layer of view.layers) {
    ids.forEach((t, i) => {
      const cell = view.cells.find((c) => c.layer === layer && c.technique === t);
      if (!cell) return;
      const tops = cell.topK.map((k) => `${show(k.text)} ${k.prob.toFixed(3)}`).join('  ');
      console.log(`${i === 0 ? `layer ${String(layer).padStart(2)}` : '        '}  ${t.padEnd(width)} ${cell.correct ? '✓' : ' '} ${tops}`);
    });
  }
}
