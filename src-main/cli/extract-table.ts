import type { ExampleResult } from '../sweep/extract.ts';

/** The terminal view of one extraction: per layer, each technique's top-k, ✓ where top-1 is the model's own. */
export function printExtraction(opts: { example: ExampleResult; techniques: string[]; tokenString(id: number): string }): void {
  const { example, techniques, tokenString } = opts;
  const show = (id: number) => JSON.stringify(tokenString(id));
  const context = example.tokens.slice(Math.max(0, example.position - 8), example.position + 1).map(tokenString).join('');
  console.log(`position ${example.position} of ${example.tokens.length} tokens: …${JSON.stringify(context)}`);
  console.log(`model's own top-1 there: ${show(example.reference_top1)} (id ${example.reference_top1})\n`);
  const width = Math.max(...techniques.map((t) => t.length));
  const layers = [...new Set(example.layers.map((r) => r.layer))].sort((a, b) => a - b);
  for (const layer of layers) {
    techniques.forEach((t, i) => {
      const r = example.layers.find((x) => x.layer === layer && x.technique === t);
      if (!r) return;
      const mark = r.top1 === example.reference_top1 ? '✓' : ' ';
      const tops = r.top_k.ids.map((id, j) => `${show(id)} ${r.top_k.probs[j].toFixed(3)}`).join('  ');
      console.log(`${i === 0 ? `layer ${String(layer).padStart(2)}` : '        '}  ${t.padEnd(width)} ${mark} ${tops}`);
    });
  }
}
