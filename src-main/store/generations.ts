/**
 * Which stored row a run reads for each of its cells (schema version 4): a cell may hold several
 * rows, never overwritten, numbered by `gen` in the order they were written.
 *
 * - A run that shares the cache (a plain sweep) reads the oldest row with at least its top-k, so a
 *   second identical sweep is served from what the first stored.
 * - A run that owns its rows (`--recompute`, a naive verification, a merge) reads the oldest of the
 *   rows it produced itself, so its numbers are its own and never another run's.
 *
 * Rows are only ever added with a higher gen than the cell already has, so the row a run reads can
 * only change when rows are deleted, and deleteRun keeps every row another run reads.
 */

/**
 * A condition on results alias `r`: it is the row run `run` (an SQL expression for its id) reads,
 * for a run whose k is `k`. One index range probe per cell (the primary key ends with gen).
 * The run's producer is a scalar subquery without correlation, so SQLite evaluates it once.
 */
export function chosen(r: string, run = '@run', k = '@k'): string {
  return `${r}.gen = (SELECT min(x.gen) FROM results x
      WHERE x.model_id = ${r}.model_id AND x.example_id = ${r}.example_id AND x.technique_id = ${r}.technique_id AND x.layer = ${r}.layer
        AND x.k >= ${k} AND x.producer IS coalesce(${ownProducer(run)}, x.producer))`;
}

/** The producer whose rows run `run` reads only, when it owns its rows; NULL (any producer) when it shares the cache. */
export function ownProducer(run: string): string {
  return `(SELECT iif(o.owns_rows, o.producer, NULL) FROM runs o WHERE o.id = ${run})`;
}

/**
 * The values a new row of run `@run` is written with: the next gen of its cell, and the run's
 * producer. Parameters: @model, @example, @technique, @layer, @run.
 */
export const NEXT_GEN = `(SELECT coalesce(max(x.gen) + 1, 0) FROM results x
      WHERE x.model_id = @model AND x.example_id = @example AND x.technique_id = @technique AND x.layer = @layer)`;
