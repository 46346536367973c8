import type { LayerSummary } from '../sweep/spec.ts';

/** Per-layer precision@1 and seed-convention surprisal, one column pair per technique. */
export function formatSummaryTable(summary: LayerSummary[], techniques: string[]): string {
  const layers = [...new Set(summary.map((s) => s.layer))].sort((a, b) => a - b);
  const cell = (s: LayerSummary | undefined) => (s ? `${s.precision.mean.toFixed(3)} / ${s.surprisal.mean.toFixed(2)}` : '-').padStart(15);
  const header = `layer  ${techniques.map((t) => t.padStart(15)).join(' ')}`;
  const lines = layers.map((l) => `${String(l).padStart(5)}  ${techniques.map((t) => cell(summary.find((s) => s.technique === t && s.layer === l))).join(' ')}`);
  return ['precision@1 / surprisal (nats, seed convention: -ln p_technique(model top-1)); means over examples', header, ...lines].join('\n');
}
