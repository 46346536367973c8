import type { SummaryRow } from '../api/contract.ts';

/** Wide enough for "0.123 / 4.56" and "not measured"; with 5 techniques a line stays under 100 columns. */
const CELL = 15;

/**
 * Per-layer means, one column per technique, in two blocks: precision@1 / seed-convention
 * surprisal, then the per-row measures KL(p_model ‖ p_technique) / entropy (docs/PROTOCOL.md), and
 * a third for a run that follows record tokens: their surprisal / rank (PROTOCOL.md "Tracked tokens"). Each
 * line ends with the number of examples behind it (a range where techniques differ, e.g. a
 * cancelled run); in the measures block, those that carry the measures. A run whose rows were all
 * stored before the measures existed gets one line saying so instead of a block of dashes.
 */
export function formatSummaryTable(summary: SummaryRow[], techniques: string[]): string {
  const precision = block(summary, techniques, {
    title: 'precision@1 / surprisal (nats, seed convention: -ln p_technique(model top-1)); means over n examples',
    cell: (s) => `${s.precision.mean.toFixed(3)} / ${s.surprisal.mean.toFixed(2)}`,
    n: (s) => s.n,
  });
  // A run that follows each record's own token (track 'record') ends with that token's block.
  const tracked = summary.some((s) => s.tracked)
    ? ['', ...block(summary, techniques, {
      title: "each record's tracked token: -ln p_technique(token), nats / rank (ids above it); means",
      cell: (s) => (s.tracked ? `${s.tracked.surprisal.mean.toFixed(2)} / ${s.tracked.rank.mean.toFixed(1)}` : '-'),
      n: (s) => s.tracked?.n ?? 0,
    })]
    : [];
  if (!summary.some((s) => s.measures)) {
    return [...precision, 'KL / entropy: not measured (rows stored before the per-row measures existed; `sweep --recompute` computes them)', ...tracked].join('\n');
  }
  const measures = block(summary, techniques, {
    title: 'KL(p_model ‖ p_technique) / entropy(p_technique), nats; means over the n examples that carry them',
    cell: (s) => (s.measures ? `${s.measures.kl.mean.toFixed(3)} / ${s.measures.entropy.mean.toFixed(2)}` : 'not measured'),
    n: (s) => s.measures?.n ?? 0,
  });
  return [...precision, '', ...measures, ...tracked].join('\n');
}

/** A title, a header naming the techniques, and one line per layer: each technique's cell ('-' where it has no row) and the count behind the line. */
function block(summary: SummaryRow[], techniques: string[], o: { title: string; cell: (s: SummaryRow) => string; n: (s: SummaryRow) => number }): string[] {
  const layers = [...new Set(summary.map((s) => s.layer))].sort((a, b) => a - b);
  const countOf = (rows: SummaryRow[]) => {
    const ns = rows.map(o.n);
    const [lo, hi] = [Math.min(...ns), Math.max(...ns)];
    return (lo === hi ? `${lo}` : `${lo}–${hi}`).padStart(9);
  };
  const header = `layer  ${techniques.map((t) => t.padStart(CELL)).join(' ')}  ${'n'.padStart(9)}`;
  const lines = layers.map((l) => {
    const rows = techniques.map((t) => summary.find((s) => s.technique === t && s.layer === l));
    const cells = rows.map((s) => (s ? o.cell(s) : '-').padStart(CELL));
    return `${String(l).padStart(5)}  ${cells.join(' ')}  ${countOf(rows.filter((r): r is SummaryRow => r !== undefined))}`;
  });
  return [o.title, header, ...lines];
}
