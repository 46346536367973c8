import { LogitscopeError } from '../errors.ts';
import type { LayerSummary } from '../protocol/spec.ts';
import { summaryFromSums, type LayerSums } from '../sweep/intervals.ts';
import type { RunShape } from './run-rows.ts';
import type { SqliteFile } from './sqlite.ts';
import { chosen } from './generations.ts';
import { sumsColumns } from './summary-sums.ts';

/** One data source's share of a run: its examples and one technique's per-layer summaries over them. */
export interface SourceSummary {
  source: string;
  n: number;
  summary: LayerSummary[];
}

/** Where an example's record named no source; a name a dataset's meta never produces in parentheses. */
export const NO_SOURCE = '(none)';

/**
 * The same sums as SUMS_SELECT (summary-sums.ts), split by the example's source, for one technique.
 * The technique is fixed by its id, so the loop is the run's examples × its layers with one
 * primary-key probe per cell, as RUN_CELLS does for the whole run.
 */
const SUMS_BY_SOURCE = `SELECT coalesce(re.source, @none) AS source, l.layer AS layer, ${sumsColumns('r')}
  FROM run_examples re CROSS JOIN run_layers l CROSS JOIN results r
  WHERE re.run_id = @run AND l.run_id = @run
    AND r.model_id = @model AND r.example_id = re.example_id AND r.technique_id = @technique AND r.layer = l.layer AND r.k >= @k
    AND ${chosen('r')}
  GROUP BY coalesce(re.source, @none), l.layer`;

/** Per source, one technique's summaries over every layer; sources with the most examples first, then by name. */
export function summaryBySource(db: SqliteFile, shape: RunShape, runId: string, technique: string): SourceSummary[] {
  const ordinal = shape.techniqueNames.indexOf(technique);
  if (ordinal < 0) throw new LogitscopeError('argument_invalid', `run ${runId} has no technique "${technique}" (it has ${shape.techniqueNames.join(', ')})`, 'technique');
  const techniqueId = db.get<{ id: number }>('SELECT technique_id AS id FROM run_techniques WHERE run_id = ? AND ordinal = ?', runId, ordinal)!.id;
  const rows = db.all<Omit<LayerSums, 'technique'> & { source: string }>(SUMS_BY_SOURCE, {
    run: runId, model: shape.modelId, k: shape.k, technique: techniqueId, none: NO_SOURCE,
  });
  const bySource = new Map<string, SourceSummary>();
  for (const { source, ...sums } of rows) {
    let entry = bySource.get(source);
    if (!entry) bySource.set(source, (entry = { source, n: 0, summary: [] }));
    entry.summary.push(summaryFromSums({ technique, ...sums }));
  }
  for (const entry of bySource.values()) {
    entry.summary.sort((a, b) => a.layer - b.layer);
    // Every stored example has every layer (a batch is saved whole), so the largest layer count is the source's examples.
    entry.n = Math.max(...entry.summary.map((s) => s.n));
  }
  return [...bySource.values()].sort((a, b) => b.n - a.n || a.source.localeCompare(b.source));
}
