import type { SummaryRow } from '../api/contract.ts';

/**
 * Per-layer precision@1 and seed-convention surprisal, one column pair per technique, and the
 * number of examples behind each row (a range where techniques differ, e.g. a cancelled run).
 */
export function formatSummaryTable(summary: SummaryRow[], techniques: string[]): string {
  const layers = [...new Set(summary.map((s) => s.layer))].sort((a, b) => a - b);
  const cell = (s: SummaryRow | undefined) => (s ? `${s.precision.mean.toFixed(3)} / ${s.surprisal.mean.toFixed(2)}` : '-').padStart(15);
  const countOf = (rows: SummaryRow[]) => {
    const ns = rows.map((r) => r.n);
    const [lo, hi] = [Math.min(...ns), Math.max(...ns)];
    return (lo === hi ? `${lo}` : `${lo}–${hi}`).padStart(9);
  };
  const header = `layer  ${techniques.map((t) => t.padStart(15)).join(' ')}  ${'n'.padStart(9)}`;
  const lines = layers.map((l) => {
    const rows = techniques.map((t) => summary.find((s) => s.technique === t && s.layer === l));
    return `${String(l).padStart(5)}  ${rows.map(cell).join(' ')}  ${countOf(rows.filter((r): r is SummaryRow => r !== undefined))}`;
  });
  return ['precision@1 / surprisal (nats, seed convention: -ln p_technique(model top-1)); means over n examples', header, ...lines].join('\n');
}
