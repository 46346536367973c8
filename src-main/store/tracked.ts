import { ownProducer } from './generations.ts';
import type { RunShape } from './run-rows.ts';
import { idsOf, modelIdOf } from './stored-ids.ts';
import type { SqliteFile } from './sqlite.ts';

/**
 * The tracked table (schema version 6): per cell and followed token, its exact log-probability and
 * rank. Rows are added and chosen exactly as results rows are (generations.ts): never overwritten,
 * numbered by gen per cell and token; a run reads the oldest, or, owning its rows, the oldest of its own.
 */

export interface TrackedValue {
  id: number;
  logprob: number;
  rank: number;
}

/** A condition on tracked alias `a`: it is the row run `run` reads for its cell and token. */
export function chosenTracked(a: string, run = '@run'): string {
  return `${a}.gen = (SELECT min(x.gen) FROM tracked x
      WHERE x.model_id = ${a}.model_id AND x.example_id = ${a}.example_id AND x.technique_id = ${a}.technique_id AND x.layer = ${a}.layer
        AND x.token = ${a}.token AND x.producer IS coalesce(${ownProducer(run)}, x.producer))`;
}

const SAME_CELL = 'x.model_id = @model AND x.example_id = @example AND x.technique_id = @technique AND x.layer = @layer AND x.token = @token';

/**
 * Adds tracked rows in the caller's transaction: each as its cell's next gen, produced by this run,
 * unless the cell already holds one this run reads. `reads`: the run's producer when it owns its rows.
 */
export function saveTracked(
  db: SqliteFile,
  shape: RunShape,
  rows: readonly { example: number; technique: number; layer: number; tracked: TrackedValue }[],
): void {
  const reads = shape.ownsRows ? shape.producer : null;
  for (const r of rows) {
    db.run(
      `INSERT INTO tracked (model_id, example_id, technique_id, layer, token, gen, producer, logprob, rank)
       SELECT @model, @example, @technique, @layer, @token, (SELECT coalesce(max(x.gen) + 1, 0) FROM tracked x WHERE ${SAME_CELL}), @producer, @logprob, @rank
       WHERE NOT EXISTS (SELECT 1 FROM tracked x WHERE ${SAME_CELL} AND x.producer IS coalesce(@reads, x.producer))`,
      {
        model: shape.modelId, example: r.example, technique: r.technique, layer: r.layer, token: r.tracked.id,
        producer: shape.producer, logprob: r.tracked.logprob, rank: r.tracked.rank, reads,
      },
    );
  }
}

/** Whether every technique and layer of the run holds the tracked rows of each token its run examples of this example follow. */
export function trackedComplete(db: SqliteFile, runId: string, shape: RunShape, exampleId: number): boolean {
  const tokens = db.all<{ n: number }>(
    `SELECT (SELECT count(*) FROM run_techniques t JOIN run_layers l ON l.run_id = t.run_id
       JOIN tracked tr ON tr.model_id = @model AND tr.example_id = @example AND tr.technique_id = t.technique_id AND tr.layer = l.layer
         AND tr.token = re.track_id AND ${chosenTracked('tr')}
       WHERE t.run_id = @run) AS n
     FROM run_examples re WHERE re.run_id = @run AND re.example_id = @example AND re.track_id IS NOT NULL`,
    { model: shape.modelId, example: exampleId, run: runId },
  );
  return tokens.every((t) => t.n === shape.cellsPerExample);
}

/**
 * Stored tracked rows for these examples' tokens, keyed `${exampleKey}|${token}|${techniqueKey}|${layer}`:
 * per cell the oldest, or with `producer` the oldest that producer wrote.
 */
export function lookupTracked(
  db: SqliteFile,
  q: { modelKey: string; wanted: readonly { exampleKey: string; token: number }[]; techniqueKeys: readonly string[]; layers: readonly number[] },
  producer: number | null,
): Map<string, TrackedValue> {
  const hits = new Map<string, TrackedValue>();
  const model = modelIdOf(db, q.modelKey);
  if (model === undefined) return hits;
  const techniques = idsOf(db, 'techniques', q.techniqueKeys);
  const exampleIds = new Map(idsOf(db, 'examples', q.wanted.map((w) => w.exampleKey)).map((e) => [e.key, e.id]));
  const layers = new Set(q.layers);
  for (const w of q.wanted) {
    const example = exampleIds.get(w.exampleKey);
    if (example === undefined) continue;
    for (const t of techniques) {
      // Oldest first: the first row seen for a layer is the one kept.
      const rows = db.all<{ layer: number; logprob: number; rank: number }>(
        `SELECT tr.layer, tr.logprob, tr.rank FROM tracked tr
         WHERE tr.model_id = ? AND tr.example_id = ? AND tr.technique_id = ? AND tr.token = ? AND tr.producer IS coalesce(?, tr.producer) ORDER BY tr.layer, tr.gen`,
        model, example, t.id, w.token, producer,
      );
      for (const r of rows) {
        const key = `${w.exampleKey}|${w.token}|${t.key}|${r.layer}`;
        if (layers.has(r.layer) && !hits.has(key)) hits.set(key, { id: w.token, logprob: r.logprob, rank: r.rank });
      }
    }
  }
  return hits;
}

/** The run's tracked rows for examples after..last, keyed `${ordinal}|${technique ordinal}|${layer}`. */
export function readTracked(db: SqliteFile, shape: RunShape, runId: string, after: number, last: number): Map<string, TrackedValue> {
  const rows = db.all<{ ordinal: number; technique: number; layer: number; token: number; logprob: number; rank: number }>(
    `SELECT re.ordinal, t.ordinal AS technique, tr.layer, tr.token, tr.logprob, tr.rank
     FROM run_examples re CROSS JOIN run_techniques t CROSS JOIN run_layers l CROSS JOIN tracked tr
     WHERE re.run_id = @run AND re.track_id IS NOT NULL AND re.ordinal > @after AND re.ordinal <= @last AND t.run_id = @run AND l.run_id = @run
       AND tr.model_id = @model AND tr.example_id = re.example_id AND tr.technique_id = t.technique_id AND tr.layer = l.layer
       AND tr.token = re.track_id AND ${chosenTracked('tr')}`,
    { run: runId, model: shape.modelId, after, last },
  );
  return new Map(rows.map((r) => [`${r.ordinal}|${r.technique}|${r.layer}`, { id: r.token, logprob: r.logprob, rank: r.rank }]));
}

/**
 * Per technique and layer, the sums of the run's followed tokens (sweep/intervals.ts LayerSums's
 * tracked fields), keyed `${technique name}|${layer}`; empty, after one probe, for a run that follows none.
 */
export function trackedSums(db: SqliteFile, shape: RunShape, runId: string): Map<string, { n: number; surprisal: number; surprisalSq: number; rank: number; rankSq: number }> {
  const follows = db.get('SELECT 1 FROM run_examples WHERE run_id = ? AND track_id IS NOT NULL LIMIT 1', runId);
  if (!follows) return new Map();
  const rows = db.all<{ technique: string; layer: number; n: number; surprisal: number; surprisalSq: number; rank: number; rankSq: number }>(
    `SELECT t.name AS technique, l.layer, count(*) AS n, total(-tr.logprob) AS surprisal, total(tr.logprob * tr.logprob) AS surprisalSq,
       total(tr.rank) AS rank, total(tr.rank * tr.rank) AS rankSq
     FROM run_examples re CROSS JOIN run_techniques t CROSS JOIN run_layers l CROSS JOIN tracked tr
     WHERE re.run_id = @run AND re.track_id IS NOT NULL AND t.run_id = @run AND l.run_id = @run
       AND tr.model_id = @model AND tr.example_id = re.example_id AND tr.technique_id = t.technique_id AND tr.layer = l.layer
       AND tr.token = re.track_id AND ${chosenTracked('tr')}
     GROUP BY t.ordinal, l.layer`,
    { run: runId, model: shape.modelId },
  );
  return new Map(rows.map(({ technique, layer, ...sums }) => [`${technique}|${layer}`, sums]));
}

/**
 * deleteRun's step for the tracked table (@model, @run), as DELETE_UNSHARED_RESULTS for results:
 * every tracked row of the run's cells and tokens that no other run of the same model reads goes;
 * the row another run following the same token reads stays, so its numbers do not change.
 */
export const DELETE_UNSHARED_TRACKED = `DELETE FROM tracked WHERE model_id = @model
     AND (example_id, technique_id, layer, token) IN (
       SELECT re.example_id, t.technique_id, l.layer, re.track_id FROM run_examples re
       JOIN run_techniques t ON t.run_id = re.run_id JOIN run_layers l ON l.run_id = re.run_id WHERE re.run_id = @run AND re.track_id IS NOT NULL)
     AND NOT EXISTS (
       SELECT 1 FROM run_examples re2
       JOIN runs r2 ON r2.id = re2.run_id AND r2.model_id = tracked.model_id
       JOIN run_techniques t2 ON t2.run_id = re2.run_id AND t2.technique_id = tracked.technique_id
       JOIN run_layers l2 ON l2.run_id = re2.run_id AND l2.layer = tracked.layer
       WHERE re2.example_id = tracked.example_id AND re2.track_id = tracked.token AND re2.run_id <> @run
         AND ${chosenTracked('tracked', 're2.run_id')})`;
