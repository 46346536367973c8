import { tInterval } from '../sweep/intervals.ts';
import type { RunShape } from './run-rows.ts';
import type { SqliteFile } from './sqlite.ts';
import type { LayerDifference } from '../protocol/spec.ts';
import { chosen } from './generations.ts';
import { correctSql } from '../sweep/readout.ts';

/**
 * Two runs compared example by example (runs.diff): b − a per technique and layer over the
 * examples both computed, with a paired interval.
 */

/**
 * The rows both runs read for the examples both computed, paired by technique and layer: ra is
 * run a's row, rb run b's (each the row that run reads, generations.ts).
 */
const PAIRED = `
  FROM (SELECT example_id FROM run_examples WHERE run_id = @a INTERSECT SELECT example_id FROM run_examples WHERE run_id = @b) e
    CROSS JOIN run_techniques ta CROSS JOIN run_techniques tb CROSS JOIN run_layers la CROSS JOIN run_layers lb
    CROSS JOIN results ra CROSS JOIN results rb
  WHERE ta.run_id = @a AND tb.run_id = @b AND tb.technique_id = ta.technique_id
    AND la.run_id = @a AND lb.run_id = @b AND lb.layer = la.layer
    AND ra.model_id = @modelA AND ra.example_id = e.example_id AND ra.technique_id = ta.technique_id AND ra.layer = la.layer AND ra.k >= @kA
    AND ${chosen('ra', '@a', '@kA')}
    AND rb.model_id = @modelB AND rb.example_id = e.example_id AND rb.technique_id = ta.technique_id AND rb.layer = la.layer AND rb.k >= @kB
    AND ${chosen('rb', '@b', '@kB')}`;

/**
 * Run b minus run a per technique and layer, paired by example: the examples both runs list
 * (same tokens and position, hence the same example id), the techniques both ran (same technique
 * id: same kind, prompt and target rule, whatever either run named it) and the layers both swept.
 * Parameters: @a, @b (run ids), @modelA, @modelB (model ids), @kA, @kB. Sums of each per-example
 * difference and of its square: all a paired interval needs. CROSS JOIN fixes the loop order as in
 * RUN_CELLS: shared examples, then techniques and layers, then one primary-key probe per run.
 */
const PAIRED_SUMS = `
  SELECT technique, layer, count(*) AS n,
    sum(dp) AS precision, sum(dp * dp) AS precisionSq,
    sum(ds) AS surprisal, sum(ds * ds) AS surprisalSq,
    sum(dq) AS surprisalPaper, sum(dq * dq) AS surprisalPaperSq
  FROM (
    SELECT ta.ordinal AS ordinal, ta.name AS technique, la.layer AS layer,
      ${correctSql('rb')} - ${correctSql('ra')} AS dp,
      rb.surprisal - ra.surprisal AS ds,
      rb.surprisal_paper - ra.surprisal_paper AS dq
    ${PAIRED}
  )
  GROUP BY ordinal, layer ORDER BY ordinal, layer`;

interface PairedSums {
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
function differenceFromSums(s: PairedSums): LayerDifference {
  return {
    technique: s.technique,
    layer: s.layer,
    n: s.n,
    precision: tInterval(s.precision, s.precisionSq, s.n),
    surprisal: tInterval(s.surprisal, s.surprisalSq, s.n),
    surprisalPaper: tInterval(s.surprisalPaper, s.surprisalPaperSq, s.n),
    // Paired differences of the per-row measures are not computed (yet): runs of older rows have none.
    measures: null,
  };
}

/**
 * Run b minus run a per technique and layer over the examples both computed, each difference
 * taken within one example: the examples' own variation cancels, so the interval is narrower
 * than one from the two runs' separate intervals.
 */
export function pairedDifference(db: SqliteFile, a: { id: string; shape: RunShape }, b: { id: string; shape: RunShape }): LayerDifference[] {
  return db
    .all<PairedSums>(PAIRED_SUMS, { a: a.id, b: b.id, modelA: a.shape.modelId, modelB: b.shape.modelId, kA: a.shape.k, kB: b.shape.k })
    .map(differenceFromSums);
}

/**
 * Per technique (a's order), over every shared example and layer: the largest |b − a| of each
 * surprisal, and how many rows' top-1 differ. What tells a verification run (naive, recompute) that
 * agrees to the last bits from one that does not: a mean difference of 0 hides both.
 */
const LARGEST = `
  SELECT ta.name AS technique, count(*) AS rows, max(abs(rb.surprisal - ra.surprisal)) AS surprisal,
    max(abs(rb.surprisal_paper - ra.surprisal_paper)) AS surprisalPaper, sum(rb.top1 <> ra.top1) AS top1Differs
  ${PAIRED}
  GROUP BY ta.ordinal ORDER BY ta.ordinal`;

export interface LargestDifference {
  technique: string;
  /** Rows (example × layer) compared. */
  rows: number;
  /** max |b − a| over those rows, in nats. */
  surprisal: number;
  surprisalPaper: number;
  /** Rows whose top-1 token differs. */
  top1Differs: number;
}

export function largestDifferences(db: SqliteFile, a: { id: string; shape: RunShape }, b: { id: string; shape: RunShape }): LargestDifference[] {
  return db.all<LargestDifference>(LARGEST, { a: a.id, b: b.id, modelA: a.shape.modelId, modelB: b.shape.modelId, kA: a.shape.k, kB: b.shape.k });
}

/** How many examples the two runs both list (same tokens and position). */
export function sharedExamples(db: SqliteFile, a: string, b: string): number {
  return db.get<{ n: number }>(
    'SELECT count(*) AS n FROM (SELECT example_id FROM run_examples WHERE run_id = ? INTERSECT SELECT example_id FROM run_examples WHERE run_id = ?)', a, b,
  )!.n;
}
