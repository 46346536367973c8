import type { LayerSummary } from '../protocol/spec.ts';
import type { LayerComparison } from './types.ts';
import { correctSql } from '../sweep/readout.ts';

/**
 * Review's per-layer summaries: SQL adds up the stored rows into sweep/intervals.ts's LayerSums
 * (n, Σx, Σx² per metric), and the intervals come from the same `summaryFromSums` the live view
 * uses, so a run's summary is the same whether it was computed per batch or read back.
 */

/**
 * With RUN_CELLS (row-reads.ts) between them: one LayerSums row per technique and layer, in run
 * order, with the technique's id (what it computes), by which another run's sums pair with these.
 */
export const SUMS_SELECT = `SELECT t.name AS technique, t.technique_id AS techniqueId, r.layer AS layer, ${sumsColumns('r')}`;

/**
 * LayerSums's columns over results alias `r` (one group of rows). The measures are NULL on rows
 * stored before they existed: count(kl) counts the rows that have them, and total() adds only those.
 */
export function sumsColumns(r: string): string {
  return `count(*) AS n, sum(${correctSql(r)}) AS correct,
  sum(${r}.surprisal) AS surprisal, sum(${r}.surprisal * ${r}.surprisal) AS surprisalSq,
  sum(${r}.surprisal_paper) AS surprisalPaper, sum(${r}.surprisal_paper * ${r}.surprisal_paper) AS surprisalPaperSq,
  count(${r}.kl) AS measured, total(${r}.kl) AS kl, total(${r}.kl * ${r}.kl) AS klSq, total(${r}.rank) AS rank, total(${r}.rank * ${r}.rank) AS rankSq,
  total(${r}.entropy) AS entropy, total(${r}.entropy * ${r}.entropy) AS entropySq,
  0 AS tracked, 0 AS trackedSurprisal, 0 AS trackedSurprisalSq, 0 AS trackedRank, 0 AS trackedRankSq`;
}
export const SUMS_GROUP = 'GROUP BY t.ordinal, l.layer ORDER BY t.ordinal, l.layer';

/** Two runs' summaries side by side per technique id and layer, a's order first, then b's extras. */
export function compareSummaries(a: readonly LayerSummary[], b: readonly LayerSummary[]): LayerComparison[] {
  const out = new Map<string, LayerComparison>();
  const entry = (s: LayerSummary) => {
    const key = `${s.technique}\0${s.layer}`;
    if (!out.has(key)) out.set(key, { technique: s.technique, layer: s.layer });
    return out.get(key)!;
  };
  for (const s of a) entry(s).a = s;
  for (const s of b) entry(s).b = s;
  for (const c of out.values()) {
    if (c.a && c.b) {
      c.diff = {
        precision: c.b.precision.mean - c.a.precision.mean,
        surprisal: c.b.surprisal.mean - c.a.surprisal.mean,
        surprisalPaper: c.b.surprisalPaper.mean - c.a.surprisalPaper.mean,
      };
    }
  }
  return [...out.values()];
}
