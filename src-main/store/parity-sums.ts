/** The parity check's sums over a stored run's rows (the verdict is sweep/parity.ts judgeParity). */
import type { ParitySums } from '../sweep/parity.ts';
import { correctSql } from '../sweep/readout.ts';
import { chosen } from './generations.ts';
import type { SqliteFile } from './sqlite.ts';

/**
 * A stored run's sums at one layer, one group per technique: the run's examples × techniques with
 * one primary-key probe each (as RUN_CELLS in row-reads.ts), so the cost is the run's examples.
 */
const PARITY_SUMS = `SELECT t.name AS technique, count(*) AS rows, sum(NOT ${correctSql('r')}) AS top1Mismatches,
  max(CASE WHEN ${correctSql('r')} THEN abs(r.surprisal - r.surprisal_paper) END) AS maxDeviation
  FROM run_examples re CROSS JOIN run_techniques t CROSS JOIN results r
  WHERE re.run_id = @run AND t.run_id = @run
    AND r.model_id = @model AND r.example_id = re.example_id AND r.technique_id = t.technique_id AND r.layer = @layer AND r.k >= @k
    AND ${chosen('r')}
  GROUP BY t.ordinal`;

export function storedParitySums(db: SqliteFile, q: { run: string; model: number; k: number; layer: number }): ParitySums[] {
  return db.all<ParitySums>(PARITY_SUMS, q);
}
