import { tInterval } from '../sweep/intervals.ts';
import { mcnemarExact } from '../sweep/significance.ts';
import type { RunShape } from './run-rows.ts';
import type { SqliteFile } from './sqlite.ts';
import type { LayerDifference } from '../protocol/spec.ts';
import { chosen } from './generations.ts';
import { correctSql } from '../sweep/readout.ts';

/**
 * B − A compared example by example (runs.diff, runs.diffTechniques): per technique and layer
 * over the examples both sides computed, with a paired interval and McNemar's exact test.
 * docs/PROTOCOL.md, "Comparing techniques and runs".
 */

/** One side of a comparison: a run and the rows it reads. */
export interface Side {
  id: string;
  shape: RunShape;
}

/**
 * Which of b's techniques each of a's is paired with: across runs, the same technique id (same
 * kind, prompt tokens and target rule, whatever either run named it: keys.ts); within one run, two
 * named techniques (their ordinals in the run).
 */
export type Pairing = { by: 'what-it-computes' } | { by: 'ordinals'; a: number; b: number };

/**
 * The rows both sides read for the examples both computed, paired by technique and layer: ra is
 * a's row, rb b's (each the row that run reads, generations.ts). With a = b (one run) the shared
 * examples are simply the run's. Parameters: @a, @b (run ids), @modelA, @modelB, @kA, @kB, and
 * @ta, @tb (technique ordinals) for the 'ordinals' pairing.
 */
function paired(pairing: Pairing): string {
  const techniques = pairing.by === 'ordinals' ? 'ta.ordinal = @ta AND tb.ordinal = @tb' : 'tb.technique_id = ta.technique_id';
  return `
  FROM (SELECT example_id FROM run_examples WHERE run_id = @a INTERSECT SELECT example_id FROM run_examples WHERE run_id = @b) e
    CROSS JOIN run_techniques ta CROSS JOIN run_techniques tb CROSS JOIN run_layers la CROSS JOIN run_layers lb
    CROSS JOIN results ra CROSS JOIN results rb
  WHERE ta.run_id = @a AND tb.run_id = @b AND ${techniques}
    AND la.run_id = @a AND lb.run_id = @b AND lb.layer = la.layer
    AND ra.model_id = @modelA AND ra.example_id = e.example_id AND ra.technique_id = ta.technique_id AND ra.layer = la.layer AND ra.k >= @kA
    AND ${chosen('ra', '@a', '@kA')}
    AND rb.model_id = @modelB AND rb.example_id = e.example_id AND rb.technique_id = tb.technique_id AND rb.layer = la.layer AND rb.k >= @kB
    AND ${chosen('rb', '@b', '@kB')}`;
}

/**
 * Sums of each per-example difference and of its square (all a paired interval needs), and the
 * discordant counts McNemar's test needs. CROSS JOIN fixes the loop order as in RUN_CELLS: shared
 * examples, then techniques and layers, then one primary-key probe per side. A row is labelled by
 * a's technique across runs, and "B − A" by name within one.
 */
function pairedSums(pairing: Pairing): string {
  const label = pairing.by === 'ordinals' ? `tb.name || ' − ' || ta.name` : 'ta.name';
  return `
  SELECT technique, layer, count(*) AS n,
    sum(dp) AS precision, sum(dp * dp) AS precisionSq, sum(dp = -1) AS onlyA, sum(dp = 1) AS onlyB,
    sum(ds) AS surprisal, sum(ds * ds) AS surprisalSq,
    sum(dq) AS surprisalPaper, sum(dq * dq) AS surprisalPaperSq
  FROM (
    SELECT ta.ordinal AS ordinal, ${label} AS technique, la.layer AS layer,
      ${correctSql('rb')} - ${correctSql('ra')} AS dp,
      rb.surprisal - ra.surprisal AS ds,
      rb.surprisal_paper - ra.surprisal_paper AS dq
    ${paired(pairing)}
  )
  GROUP BY ordinal, layer ORDER BY ordinal, layer`;
}

interface PairedSums {
  technique: string;
  layer: number;
  n: number;
  precision: number;
  precisionSq: number;
  onlyA: number;
  onlyB: number;
  surprisal: number;
  surprisalSq: number;
  surprisalPaper: number;
  surprisalPaperSq: number;
}

/**
 * The mean difference and its Student t interval for each metric. Precision's per-example
 * difference is −1, 0 or 1; its t interval is the usual paired one (Wilson is for one proportion),
 * and McNemar's exact test says whether the two are right equally often.
 */
function differenceFromSums(s: PairedSums): LayerDifference {
  return {
    technique: s.technique,
    layer: s.layer,
    n: s.n,
    precision: tInterval(s.precision, s.precisionSq, s.n),
    surprisal: tInterval(s.surprisal, s.surprisalSq, s.n),
    surprisalPaper: tInterval(s.surprisalPaper, s.surprisalPaperSq, s.n),
    mcnemar: mcnemarExact(s.onlyA, s.onlyB),
    // Paired differences of the per-row measures are not computed (yet): runs of older rows have none.
    measures: null,
    tracked: null,
  };
}

function params(a: Side, b: Side, pairing: Pairing) {
  return {
    a: a.id, b: b.id, modelA: a.shape.modelId, modelB: b.shape.modelId, kA: a.shape.k, kB: b.shape.k,
    ...(pairing.by === 'ordinals' && { ta: pairing.a, tb: pairing.b }),
  };
}

/**
 * B minus A per technique and layer over the examples both computed, each difference taken within
 * one example: the examples' own variation cancels, so the interval is narrower than one from
 * the two sides' separate intervals.
 */
export function pairedDifference(db: SqliteFile, a: Side, b: Side, pairing: Pairing = { by: 'what-it-computes' }): LayerDifference[] {
  return db.all<PairedSums>(pairedSums(pairing), params(a, b, pairing)).map(differenceFromSums);
}

/**
 * Per technique (a's order), over every shared example and layer: the largest |b − a| of each
 * surprisal, and how many rows' top-1 differ. What tells a verification run (naive, recompute) that
 * agrees to the last bits from one that does not: a mean difference of 0 hides both.
 */
const LARGEST = `
  SELECT ta.name AS technique, count(*) AS rows, max(abs(rb.surprisal - ra.surprisal)) AS surprisal,
    max(abs(rb.surprisal_paper - ra.surprisal_paper)) AS surprisalPaper, sum(rb.top1 <> ra.top1) AS top1Differs
  ${paired({ by: 'what-it-computes' })}
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

export function largestDifferences(db: SqliteFile, a: Side, b: Side): LargestDifference[] {
  return db.all<LargestDifference>(LARGEST, params(a, b, { by: 'what-it-computes' }));
}

/** How many examples the two runs both list (same tokens and position). */
export function sharedExamples(db: SqliteFile, a: string, b: string): number {
  return db.get<{ n: number }>(
    'SELECT count(*) AS n FROM (SELECT example_id FROM run_examples WHERE run_id = ? INTERSECT SELECT example_id FROM run_examples WHERE run_id = ?)', a, b,
  )!.n;
}
