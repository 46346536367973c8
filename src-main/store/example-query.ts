import { LogitscopeError } from '../errors.ts';
import type { RunShape } from './run-rows.ts';
import type { SqliteFile } from './sqlite.ts';
import { chosen } from './generations.ts';
import { correctSql, isCorrect } from '../sweep/readout.ts';

/**
 * "Which examples matter": a run's examples filtered and sorted by one technique × layer cell,
 * computed in SQL over the stored results, one page at a time (the inspector's finder and heatmap).
 */
export interface ExampleQuery {
  filter?: {
    technique?: string;
    layer?: number;
    /** Whether the cell's top-1 equals the reference (the model's own top-1). */
    correct?: boolean;
    referenceToken?: number;
    source?: string;
    /** Surprisal (seed convention) strictly above this, in nats. */
    minSurprisal?: number;
  };
  sort?: { by: 'surprisal' | 'surprisalPaper' | 'ordinal'; technique: string; layer: number; descending?: boolean };
  offset: number;
  limit: number;
}

export interface FoundExample {
  ordinal: number;
  recordIndex: number;
  source?: string;
  referenceTop1: number;
  /** The chosen cell's numbers. */
  top1: number;
  correct: boolean;
  surprisal: number;
  surprisalPaper: number;
  /** Every layer of the run for the chosen cell's technique, in layer order (the heatmap's row). */
  layers: { layer: number; top1: number; correct: boolean; surprisal: number }[];
}

export interface FoundExamples {
  /** The technique × layer the filter and the rows' numbers refer to. */
  cell: { technique: string; layer: number };
  total: number;
  rows: FoundExample[];
}

type Row = { ordinal: number; recordIndex: number; source: string | null; exampleId: number; referenceTop1: number; top1: number; surprisal: number; surprisalPaper: number };

/**
 * The filter's cell (f) is probed by primary key per example of the run, in run order (CROSS JOIN
 * fixes that loop order, as RUN_CELLS in row-reads.ts); the sort's cell (s) the same way.
 */
const MATCHES = `
  FROM run_examples re CROSS JOIN results f CROSS JOIN results s
  WHERE re.run_id = @run
    AND f.model_id = @model AND f.example_id = re.example_id AND f.technique_id = @ft AND f.layer = @fl AND f.k >= @k AND ${chosen('f')}
    AND s.model_id = @model AND s.example_id = re.example_id AND s.technique_id = @st AND s.layer = @sl AND s.k >= @k AND ${chosen('s')}
    AND (@correct IS NULL OR ${correctSql('f')} = @correct)
    AND (@reference IS NULL OR f.reference_top1 = @reference)
    AND (@source IS NULL OR re.source = @source)
    AND (@minSurprisal IS NULL OR f.surprisal > @minSurprisal)`;

const ORDER = { ordinal: 're.ordinal', surprisal: 's.surprisal', surprisalPaper: 's.surprisal_paper' } as const;

export function findExamples(db: SqliteFile, shape: RunShape, runId: string, q: ExampleQuery): FoundExamples {
  const technique = q.filter?.technique ?? q.sort?.technique ?? shape.techniqueNames[0];
  const layer = q.filter?.layer ?? q.sort?.layer ?? Math.max(...shape.layers);
  const idOf = (name: string, field: string) => {
    const ordinal = shape.techniqueNames.indexOf(name);
    if (ordinal < 0) throw new LogitscopeError('argument_invalid', `run ${runId} has no technique "${name}" (it has ${shape.techniqueNames.join(', ')})`, field);
    return db.get<{ id: number }>('SELECT technique_id AS id FROM run_techniques WHERE run_id = ? AND ordinal = ?', runId, ordinal)!.id;
  };
  const checkLayer = (l: number, field: string) => {
    if (!shape.layers.has(l)) throw new LogitscopeError('argument_invalid', `run ${runId} has no layer ${l} (it has ${[...shape.layers].sort((a, b) => a - b).join(', ')})`, field);
  };
  // The sort's cell first: a filter cell left out takes it, and a bad one is the sort's to name.
  const sort = q.sort ?? { by: 'ordinal' as const, technique, layer, descending: false };
  checkLayer(sort.layer, q.sort ? 'sort.layer' : 'filter.layer');
  const st = idOf(sort.technique, q.sort ? 'sort.technique' : 'filter.technique');
  checkLayer(layer, 'filter.layer');
  const ft = idOf(technique, 'filter.technique');
  const params = {
    run: runId, model: shape.modelId, k: shape.k, ft, fl: layer, st, sl: sort.layer,
    correct: q.filter?.correct === undefined ? null : Number(q.filter.correct),
    reference: q.filter?.referenceToken ?? null, source: q.filter?.source ?? null, minSurprisal: q.filter?.minSurprisal ?? null,
  };
  const total = db.get<{ n: number }>(`SELECT count(*) AS n ${MATCHES}`, params)!.n;
  const rows = db.all<Row>(
    `SELECT re.ordinal, re.record_index AS recordIndex, re.source, re.example_id AS exampleId, f.reference_top1 AS referenceTop1, f.top1,
       f.surprisal, f.surprisal_paper AS surprisalPaper
     ${MATCHES} ORDER BY ${ORDER[sort.by]} ${sort.descending ? 'DESC' : 'ASC'}, re.ordinal LIMIT @limit OFFSET @offset`,
    { ...params, limit: q.limit, offset: q.offset },
  );
  return {
    cell: { technique, layer },
    total,
    rows: rows.map((r) => ({
      ordinal: r.ordinal, recordIndex: r.recordIndex, ...(r.source !== null && { source: r.source }), referenceTop1: r.referenceTop1,
      top1: r.top1, correct: isCorrect(r), surprisal: r.surprisal, surprisalPaper: r.surprisalPaper,
      layers: db
        .all<{ layer: number; top1: number; referenceTop1: number; surprisal: number }>(
          `SELECT l.layer, r.top1, r.reference_top1 AS referenceTop1, r.surprisal FROM run_layers l CROSS JOIN results r
           WHERE l.run_id = @run AND r.model_id = @model AND r.example_id = @example AND r.technique_id = @ft AND r.layer = l.layer AND r.k >= @k
             AND ${chosen('r')} ORDER BY l.layer`,
          { run: runId, model: shape.modelId, example: r.exampleId, ft, k: shape.k },
        )
        // Each layer against its own row's reference.
        .map((c) => ({ layer: c.layer, top1: c.top1, correct: isCorrect(c), surprisal: c.surprisal })),
    })),
  };
}
