import { LogitscopeError } from '../errors.ts';
import { chosen, NEXT_GEN } from './generations.ts';
import { exampleKey } from './keys.ts';
import { encodeTokens, encodeTopK } from './rows.ts';
import { runNotFound, THIS_PROCESS, type RunShape } from './run-rows.ts';
import type { SqliteFile } from './sqlite.ts';
import { saveTracked, trackedComplete } from './tracked.ts';
import type { LayerResultRow, RunExampleInput } from './types.ts';

/** Writing a run's examples and rows, and marking an example done once all its cells are stored. */

/**
 * Records the run's examples (again, on resume: rows are replaced by ordinal). An example whose
 * every technique and layer is already in the cache is marked done at once.
 */
export function storeExamples(db: SqliteFile, runId: string, shape: RunShape, examples: readonly RunExampleInput[]): void {
  // Ids join the cached shape only once committed: a rolled-back id can be handed out again.
  const added = new Map<string, number>();
  db.transaction(() => {
    for (const e of examples) {
      const key = exampleKey(e.tokens, e.position);
      const exampleId = db.get<{ id: number }>(
        'INSERT INTO examples (key, tokens, position) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING id',
        key, encodeTokens(e.tokens), e.position,
      )!.id;
      added.set(key, exampleId);
      db.run(
        'INSERT OR REPLACE INTO run_examples (run_id, ordinal, example_id, record_index, source, text, done, track_id) VALUES (?, ?, ?, ?, ?, ?, 0, ?)',
        runId, e.ordinal, exampleId, e.recordIndex, e.source ?? null, e.text ?? null, e.track ?? null,
      );
      // After the insert: whether it is complete depends on the token it follows.
      if (complete(db, runId, shape, exampleId)) db.run('UPDATE run_examples SET done = 1 WHERE run_id = ? AND ordinal = ?', runId, e.ordinal);
    }
    db.run(
      // The slice as drawn replaces the estimate given at createRun (a filter can leave fewer).
      `UPDATE runs SET examples_planned = (SELECT count(*) FROM run_examples WHERE run_id = @id), updated_at = @now WHERE id = @id`,
      { id: runId, now: new Date().toISOString() },
    );
  });
  for (const [key, id] of added) shape.exampleIds.set(key, id);
}

/**
 * Saves one batch in one transaction: after a crash the batch is either all there or not at all.
 * Rows are only ever added, never overwritten (generations.ts): a row is written as its cell's next
 * generation, produced by this run, unless the cell already holds a row this run reads (another
 * run stored it meanwhile, or this run's own earlier copy), which would never be read.
 */
export function saveRows(db: SqliteFile, runId: string, shape: RunShape, rows: readonly LayerResultRow[]): void {
  const values = rows.map((row) => {
    const exampleId = shape.exampleIds.get(row.exampleKey);
    const techniqueId = shape.techniqueIds.get(row.techniqueKey);
    const k = row.topK.ids.length;
    if (exampleId === undefined || techniqueId === undefined || !shape.layers.has(row.layer)) {
      throw new LogitscopeError('argument_invalid', `a result row (layer ${row.layer}) is not an example, technique and layer of run ${runId}`, 'rows');
    }
    if (k === 0 || row.topK.probs.length !== k) throw new LogitscopeError('argument_invalid', 'a result row has an empty or ragged top-k', 'rows');
    return {
      model: shape.modelId, example: exampleId, technique: techniqueId, layer: row.layer, reference: row.referenceTop1, top1: row.top1,
      surprisal: row.surprisal, surprisalPaper: row.surprisalPaper, rowK: k, topk: encodeTopK(row.topK), kl: row.kl, rank: row.rank, entropy: row.entropy,
      tracked: row.tracked,
    };
  });
  db.transaction(() => {
    // First, so that a run deleted meanwhile (by another process) is run_not_found, not a foreign key error.
    const changed = db.run(
      'UPDATE runs SET updated_at = ?, heartbeat_at = iif(owner_token = ?, ?, heartbeat_at) WHERE id = ?',
      new Date().toISOString(), THIS_PROCESS.token, Date.now(), runId,
    );
    if (changed === 0) throw runNotFound(runId);
    for (const { tracked: _, ...v } of values) {
      db.run(
        `INSERT INTO results (model_id, example_id, technique_id, layer, gen, producer, reference_top1, top1, surprisal, surprisal_paper, k, topk, kl, rank, entropy)
         SELECT @model, @example, @technique, @layer, ${NEXT_GEN}, @producer, @reference, @top1, @surprisal, @surprisalPaper, @rowK, @topk, @kl, @rank, @entropy
         WHERE NOT EXISTS (SELECT 1 FROM results x WHERE x.model_id = @model AND x.example_id = @example AND x.technique_id = @technique
           AND x.layer = @layer AND x.k >= @k AND x.producer IS coalesce(@reads, x.producer))`,
        { ...v, producer: shape.producer, k: shape.k, reads: shape.ownsRows ? shape.producer : null },
      );
    }
    saveTracked(db, shape, values.flatMap((v) => (v.tracked ? [{ example: v.example, technique: v.technique, layer: v.layer, tracked: v.tracked }] : [])));
    markComplete(db, runId, shape, new Set(values.map((v) => v.example)));
  });
}

/** Marks done each of these examples whose every technique and layer is stored, with the run's k. */
export function markComplete(db: SqliteFile, runId: string, shape: RunShape, exampleIds: Iterable<number>): void {
  for (const id of exampleIds) {
    if (complete(db, runId, shape, id)) db.run('UPDATE run_examples SET done = 1 WHERE run_id = ? AND example_id = ?', runId, id);
  }
}

function complete(db: SqliteFile, runId: string, shape: RunShape, exampleId: number): boolean {
  const { n } = db.get<{ n: number }>(
    `SELECT count(*) AS n FROM run_techniques t JOIN run_layers l ON l.run_id = t.run_id
     JOIN results r ON r.model_id = @model AND r.example_id = @example AND r.technique_id = t.technique_id AND r.layer = l.layer AND r.k >= @k
       AND ${chosen('r')}
     WHERE t.run_id = @run`,
    { model: shape.modelId, example: exampleId, k: shape.k, run: runId },
  )!;
  return n === shape.cellsPerExample && trackedComplete(db, runId, shape, exampleId);
}
