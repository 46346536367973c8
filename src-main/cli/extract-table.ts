import type { ExtractView } from '../api/contract.ts';
import type { Parity } from '../api/contract.ts';

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

/**
 * Many positions (the logit-lens picture) as text: per technique, layers as rows and positions as
 * columns, each cell the top-1; * marks a top-1 equal to the model's own there, and [pad] a
 * padding row of the head.
 */
export function printPicture(view: ExtractView): void {
  const columns = view.columns ?? [];
  const show = (text: string) => JSON.stringify(text);
  const width = 14;
  const fit = (s: string) => (s.length > width ? `${s.slice(0, width - 1)}…` : s).padEnd(width);
  console.log(`positions ${columns[0]?.position}..${columns.at(-1)?.position} of ${view.tokens.length} tokens; * = the model's own top-1 there\n`);
  const header = `${'layer'.padEnd(6)}${columns.map((c) => fit(show(view.tokens[c.position].text))).join(' ')}`;
  for (const t of view.techniques) {
    console.log(`${t.id}${t.prompt !== undefined ? ` (${show(t.prompt)})` : ''}`);
    console.log(header);
    for (const layer of view.layers) {
      const cells = columns.map((c) => {
        const cell = c.cells.find((x) => x.technique === t.id && x.layer === layer);
        if (!cell) return fit('');
        const pad = cell.top1 >= view.paddingFrom ? '[pad]' : '';
        return fit(`${cell.correct ? '*' : ''}${show(cell.topK[0]?.text ?? '')}${pad}`);
      });
      console.log(`${String(layer).padStart(5)} ${cells.join(' ')}`);
    }
    console.log(`${'model'.padEnd(6)}${columns.map((c) => fit(show(c.reference.text))).join(' ')}\n`);
  }
}

/** One line: the parity badge's verdict and what it compared. */
export function formatParity(parity: Parity): string {
  const detail = parity.techniques
    .map((t) => {
      const dev = `max |Δ| ${t.maxDeviation === null ? '-' : t.maxDeviation.toExponential(1)} nats`;
      return `${t.technique} ${t.pass === null ? 'n/a' : t.pass ? `ok (${t.rows} rows, ${dev})` : `FAIL (${t.top1Mismatches} top-1 mismatches of ${t.rows}, ${dev})`}`;
    })
    .join(', ');
  const head = `parity at layer ${parity.layer}: ${parity.status.toUpperCase()} (tolerance ${parity.toleranceNats} nats, ${parity.computeDtype})`;
  return parity.why ? `${head}: ${parity.why}${detail ? `; ${detail}` : ''}` : `${head}: ${detail}`;
}

export function printParity(parity: Parity): void {
  console.log(`\n${formatParity(parity)}`);
}
