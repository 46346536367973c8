import type { Readout } from '../sweep/readout.ts';
import { chosen } from './generations.ts';
import { decodeTokens, decodeTopK } from './rows.ts';
import type { RunShape } from './run-rows.ts';
import type { SqliteFile } from './sqlite.ts';
import { readTracked } from './tracked.ts';
import { idsOf, modelIdOf } from './stored-ids.ts';
import type { LayerResultRow, LookupQuery, RunExample } from './types.ts';

/** Reading stored rows back: a sweep's cache lookups, a run's examples, and its readouts page by page. */

/** A run's example and its stored readouts, in the run's technique and layer order. */
export interface StoredExample {
  example: Omit<RunExample, 'text'>;
  readouts: Readout[];
}

/** A stored result as the hot paths read it (SqliteFile.rows), in CELL_COLUMNS order. */
type Cell = [layer: number, referenceTop1: number, top1: number, surprisal: number, surprisalPaper: number, topk: Buffer, kl: number | null, rank: number | null, entropy: number | null];
const CELL_COLUMNS = 'r.layer, r.reference_top1, r.top1, r.surprisal, r.surprisal_paper, r.topk, r.kl, r.rank, r.entropy';

/**
 * A run's stored results: its examples × techniques × layers, joined against the shared results.
 * CROSS JOIN fixes the loop order (SQLite's planner would otherwise scan every result of the model):
 * the run's examples in order, then its techniques and layers, then one primary-key probe per cell,
 * for the one row of the cell the run reads (generations.ts). Callers append further conditions with AND.
 */
export const RUN_CELLS = `
  FROM run_examples re CROSS JOIN run_techniques t CROSS JOIN run_layers l CROSS JOIN results r
  WHERE re.run_id = @run AND t.run_id = @run AND l.run_id = @run
    AND r.model_id = @model AND r.example_id = re.example_id AND r.technique_id = t.technique_id AND r.layer = l.layer AND r.k >= @k
    AND ${chosen('r')}`;

const PAGE = 256;

/**
 * Stored rows for these keys with at least k top-k entries, keyed `${exampleKey}|${techniqueKey}|${layer}`:
 * per cell the oldest such row, or with `producer` the oldest that producer wrote (ResultStore.lookup).
 */
export function lookupRows(db: SqliteFile, q: LookupQuery, producer: number | null): Map<string, LayerResultRow> {
  const hits = new Map<string, LayerResultRow>();
  const model = modelIdOf(db, q.modelKey);
  if (model === undefined) return hits;
  const techniques = idsOf(db, 'techniques', q.techniqueKeys);
  const layers = new Set(q.layers);
  for (const e of idsOf(db, 'examples', q.exampleKeys)) {
    for (const t of techniques) {
      // Oldest first: the first row seen for a layer is the one kept.
      const cells = db.rows<Cell>(
        `SELECT ${CELL_COLUMNS} FROM results r WHERE r.model_id = ? AND r.example_id = ? AND r.technique_id = ? AND r.k >= ?
           AND r.producer IS coalesce(?, r.producer) ORDER BY r.layer, r.gen`,
        model, e.id, t.id, q.k, producer,
      );
      for (const [layer, referenceTop1, top1, surprisal, surprisalPaper, topk, kl, rank, entropy] of cells) {
        const key = `${e.key}|${t.key}|${layer}`;
        if (layers.has(layer) && !hits.has(key)) {
          hits.set(key, { exampleKey: e.key, techniqueKey: t.key, layer, referenceTop1, top1, surprisal, surprisalPaper, topK: decodeTopK(topk, q.k), kl, rank, entropy });
        }
      }
    }
  }
  return hits;
}

/** The run's examples in order, text included; `done` ones need no computing on resume. */
export function readRunExamples(db: SqliteFile, runId: string): RunExample[] {
  return db
    .all<{ ordinal: number; record_index: number; source: string | null; text: string | null; done: number; key: string; tokens: Buffer; position: number; track_id: number | null }>(
      `SELECT re.ordinal, re.record_index, re.source, re.text, re.done, e.key, e.tokens, e.position, re.track_id
       FROM run_examples re JOIN examples e ON e.id = re.example_id WHERE re.run_id = ? ORDER BY re.ordinal`,
      runId,
    )
    .map((r) => ({
      ordinal: r.ordinal, recordIndex: r.record_index, ...(r.source !== null && { source: r.source }), ...(r.text !== null && { text: r.text }),
      tokens: decodeTokens(r.tokens), position: r.position, exampleKey: r.key, done: r.done === 1, ...(r.track_id !== null && { track: r.track_id }),
    }));
}

/**
 * The run's examples that have stored results, in order, a page of examples per query: memory
 * stays flat for exports, and no statement stays open between pages, so writes can go on.
 */
export function* iterateStored(db: SqliteFile, shape: RunShape, runId: string, opts: { fromOrdinal?: number; pageSize?: number }): Generator<StoredExample> {
  const page = opts.pageSize ?? PAGE;
  for (let after = (opts.fromOrdinal ?? 0) - 1; ; ) {
    const examples = db.all<{ ordinal: number; record_index: number; source: string | null; done: number; key: string; tokens: Buffer; position: number; track_id: number | null }>(
      `SELECT re.ordinal, re.record_index, re.source, re.done, e.key, e.tokens, e.position, re.track_id
       FROM run_examples re JOIN examples e ON e.id = re.example_id WHERE re.run_id = ? AND re.ordinal > ? ORDER BY re.ordinal LIMIT ${page}`,
      runId, after,
    );
    if (examples.length === 0) return;
    const last = examples[examples.length - 1].ordinal;
    const cells = db.rows<[ordinal: number, technique: number, ...Cell]>(
      `SELECT re.ordinal, t.ordinal, ${CELL_COLUMNS}
       ${RUN_CELLS} AND re.ordinal > @after AND re.ordinal <= @last ORDER BY re.ordinal, t.ordinal, l.layer`,
      { model: shape.modelId, k: shape.k, run: runId, after, last },
    );
    const tracked = readTracked(db, shape, runId, after, last);
    let i = 0;
    for (const e of examples) {
      const readouts: Readout[] = [];
      for (; i < cells.length && cells[i][0] === e.ordinal; i++) {
        const [, technique, layer, referenceTop1, top1, surprisal, surprisalPaper, topk, kl, rank, entropy] = cells[i];
        const t = tracked.get(`${e.ordinal}|${technique}|${layer}`);
        readouts.push({ technique: shape.techniqueNames[technique], layer, referenceTop1, top1, surprisal, surprisalPaper, topK: decodeTopK(topk, shape.k), kl, rank, entropy, ...(t && { tracked: t }) });
      }
      if (readouts.length === 0) continue;
      const example = {
        ordinal: e.ordinal, recordIndex: e.record_index, ...(e.source !== null && { source: e.source }), tokens: decodeTokens(e.tokens), position: e.position,
        exampleKey: e.key, done: e.done === 1, ...(e.track_id !== null && { track: e.track_id }),
      };
      yield { example, readouts };
    }
    after = last;
  }
}
