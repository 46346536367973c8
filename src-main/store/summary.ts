import type { LayerSummary } from '../sweep/spec.ts';
import { tInterval } from '../sweep/summary.ts';
import type { LayerComparison, LayerDifference } from './types.ts';

/**
 * Review's per-layer summaries: SQL adds up the stored rows into sweep/summary.ts's LayerSums
 * (n, Σx, Σx² per metric), and the intervals come from the same `summaryFromSums` the live view
 * uses, so a run's summary is the same whether it was computed per batch or read back.
 */

/** With RUN_CELLS (result-store.ts) between them: one LayerSums row per technique and layer, in run order. */
export const SUMS_SELECT = `SELECT t.name AS technique, r.layer AS layer, count(*) AS n, sum(r.top1 = r.reference_top1) AS correct,
  sum(r.surprisal) AS surprisal, sum(r.surprisal * r.surprisal) AS surprisalSq,
  sum(r.surprisal_paper) AS surprisalPaper, sum(r.surprisal_paper * r.surprisal_paper) AS surprisalPaperSq`;
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

/**
 * Run b minus run a per technique and layer, paired by example: the examples both runs list
 * (same tokens and position, hence the same example id), the techniques both ran (same technique
 * id: same kind, prompt and target rule, whatever either run named it) and the layers both swept.
 * Parameters: @a, @b (run ids), @modelA, @modelB (model ids), @kA, @kB. Sums of each per-example
 * difference and of its square: all a paired interval needs. CROSS JOIN fixes the loop order as in
 * RUN_CELLS: shared examples, then techniques and layers, then one primary-key probe per run.
 */
export const PAIRED_SUMS = `
  SELECT technique, layer, count(*) AS n,
    sum(dp) AS precision, sum(dp * dp) AS precisionSq,
    sum(ds) AS surprisal, sum(ds * ds) AS surprisalSq,
    sum(dq) AS surprisalPaper, sum(dq * dq) AS surprisalPaperSq
  FROM (
    SELECT ta.ordinal AS ordinal, ta.name AS technique, la.layer AS layer,
      (rb.top1 = rb.reference_top1) - (ra.top1 = ra.reference_top1) AS dp,
      rb.surprisal - ra.surprisal AS ds,
      rb.surprisal_paper - ra.surprisal_paper AS dq
    FROM (SELECT example_id FROM run_examples WHERE run_id = @a INTERSECT SELECT example_id FROM run_examples WHERE run_id = @b) e
      CROSS JOIN run_techniques ta CROSS JOIN run_techniques tb CROSS JOIN run_layers la CROSS JOIN run_layers lb
      CROSS JOIN results ra CROSS JOIN results rb
    WHERE ta.run_id = @a AND tb.run_id = @b AND tb.technique_id = ta.technique_id
      AND la.run_id = @a AND lb.run_id = @b AND lb.layer = la.layer
      AND ra.model_id = @modelA AND ra.example_id = e.example_id AND ra.technique_id = ta.technique_id AND ra.layer = la.layer AND ra.k >= @kA
      AND rb.model_id = @modelB AND rb.example_id = e.example_id AND rb.technique_id = ta.technique_id AND rb.layer = la.layer AND rb.k >= @kB
  )
  GROUP BY ordinal, layer ORDER BY ordinal, layer`;

export interface PairedSums {
  technique: string;
  layer: number;
  n: number;
  precision: number;
  precisionSq: number;
  surprisal: number;
  surprisalSq: number;
  surprisalPaper: number;
  surprisalPaperSq: number;
}

/**
 * The mean difference and its Student t interval for each metric. Precision's per-example
 * difference is −1, 0 or 1; its t interval is the usual paired one (Wilson is for one proportion).
 */
export function differenceFromSums(s: PairedSums): LayerDifference {
  return {
    technique: s.technique,
    layer: s.layer,
    n: s.n,
    precision: tInterval(s.precision, s.precisionSq, s.n),
    surprisal: tInterval(s.surprisal, s.surprisalSq, s.n),
    surprisalPaper: tInterval(s.surprisalPaper, s.surprisalPaperSq, s.n),
  };
}
