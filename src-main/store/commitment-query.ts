import { medianInterval } from '../sweep/significance.ts';
import type { Interval } from '../protocol/spec.ts';
import { chosen } from './generations.ts';
import { correctSql } from '../sweep/readout.ts';

/**
 * Where each example's prediction commits (sweep/commitment.ts), read in SQL: the commitment
 * layer is the first swept layer after the last wrong one, so the rows only need to give the
 * last wrong layer per example and technique. docs/PROTOCOL.md, "Where a prediction commits".
 */

/** With RUN_CELLS (result-store.ts) between them: per example and technique, its last wrong layer (NULL: never wrong). */
export const LAST_WRONG_SELECT = `SELECT t.ordinal AS technique, max(iif(${correctSql('r')}, NULL, r.layer)) AS lastWrong`;
export const LAST_WRONG_GROUP = 'GROUP BY re.ordinal, t.ordinal';

/** One technique's commitment layers over a run's examples. */
export interface CommitmentSummary {
  technique: string;
  /** Examples with stored results. */
  n: number;
  /** Examples per commitment layer, one entry per swept layer (zeros included), in layer order. */
  histogram: { layer: number; count: number }[];
  /** Examples wrong at the last swept layer: they never commit. */
  never: number;
  /** Over the examples that commit: the median layer and its order-statistic interval (null bounds and coverage when fewer than 6; a NaN median when none commits). */
  median: Interval & { coverage: number | null };
}

/** The first swept layer after `lastWrong` (all layers: the first), or null when the last swept layer is wrong. */
export function commitmentAfter(lastWrong: number | null, sortedLayers: readonly number[]): number | null {
  return sortedLayers.find((l) => lastWrong === null || l > lastWrong) ?? null;
}

export function summarizeCommitments(
  rows: readonly { technique: number; lastWrong: number | null }[],
  techniqueNames: readonly string[],
  layers: Iterable<number>,
): CommitmentSummary[] {
  const sorted = [...layers].sort((x, y) => x - y);
  const byTechnique = techniqueNames.map(() => [] as (number | null)[]);
  for (const r of rows) byTechnique[r.technique].push(commitmentAfter(r.lastWrong, sorted));
  return techniqueNames.map((technique, i) => {
    const committed = byTechnique[i].filter((l): l is number => l !== null);
    return {
      technique,
      n: byTechnique[i].length,
      histogram: sorted.map((layer) => ({ layer, count: committed.filter((l) => l === layer).length })),
      never: byTechnique[i].length - committed.length,
      median: medianInterval(committed),
    };
  });
}

/**
 * An SQL expression: the commitment layer of example `example` under technique id `technique` in
 * run @run (parameters @run, @model, @k), NULL when it never commits. For the finder's filter.
 */
export function commitmentSql(example: string, technique: string): string {
  const lastWrong = `(SELECT max(w.layer) FROM run_layers wl CROSS JOIN results w
      WHERE wl.run_id = @run AND w.model_id = @model AND w.example_id = ${example} AND w.technique_id = ${technique} AND w.layer = wl.layer
        AND w.k >= @k AND ${chosen('w')} AND NOT ${correctSql('w')})`;
  return `(SELECT min(cl.layer) FROM run_layers cl WHERE cl.run_id = @run AND cl.layer > coalesce(${lastWrong}, -2))`;
}
