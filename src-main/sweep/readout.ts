import type { ExampleResult, LayerResult } from '../protocol/results.ts';

/**
 * The one per-example result row: the readout of one example at one hook (layer) by one technique,
 * carrying its own reference top-1. Every other shape is derived from it by one function: the
 * store's row (store/rows.ts), the inspector's and the extract view's cells (api/views.ts cellOf),
 * the export table's rows (store/export.ts), the export record's per-layer entries (layerResultOf),
 * and the summary's and parity's sums.
 */
export interface Readout {
  technique: string;
  layer: number;
  /** The model's own top-1 at the example's position, after all layers. */
  referenceTop1: number;
  top1: number;
  /** −ln p_technique(reference top-1), nats: the seed's convention. */
  surprisal: number;
  /** −ln p_model(technique's top-1) at the source position, nats: the Patchscopes paper's convention. */
  surprisalPaper: number;
  topK: { ids: number[]; probs: number[] };
  /** The per-row measures (sweep/extract.ts LayerResult, docs/PROTOCOL.md); null = not measured (a row stored before they existed). */
  kl: number | null;
  rank: number | null;
  entropy: number | null;
  /** With a followed token (a sweep's record token, an extraction's followed one): its exact ln p and rank (0-based) here. */
  tracked?: { id: number; logprob: number; rank: number };
}

/** precision@1's event (CONVENTIONS.precision_at_1); the one place top-1 meets the reference in TypeScript. */
export function isCorrect(r: Pick<Readout, 'top1' | 'referenceTop1'>): boolean {
  return r.top1 === r.referenceTop1;
}

/** The same event in SQL, over a stored results row under `alias` (0 or 1); the one place in SQL. */
export function correctSql(alias: string): string {
  return `(${alias}.top1 = ${alias}.reference_top1)`;
}

/** An extracted example's rows, each carrying the example's reference. */
export function readoutsOf(e: ExampleResult): Readout[] {
  return e.layers.map((l) => ({
    technique: l.technique,
    layer: l.layer,
    referenceTop1: e.reference_top1,
    top1: l.top1,
    surprisal: l.surprisal,
    surprisalPaper: l.surprisal_paper,
    topK: l.top_k,
    kl: l.kl,
    rank: l.rank,
    entropy: l.entropy,
    ...(l.tracked && { tracked: l.tracked }),
  }));
}

/** A row as the export record's per-layer entry (snake_case, the engine issue's field names). */
export function layerResultOf(r: Readout): LayerResult {
  return {
    layer: r.layer, technique: r.technique, top1: r.top1, surprisal: r.surprisal, surprisal_paper: r.surprisalPaper,
    kl: r.kl, rank: r.rank, entropy: r.entropy, top_k: r.topK, ...(r.tracked && { tracked: r.tracked }),
  };
}

/**
 * An example's rows as the export record's example. The record holds one reference per example:
 * the first row's (an example's rows agree on it unless they were computed by different models).
 */
export function exampleResultOf(example: { tokens: number[]; position: number }, rows: readonly Readout[]): ExampleResult {
  return { tokens: example.tokens, position: example.position, reference_top1: rows[0]?.referenceTop1 ?? -1, layers: rows.map(layerResultOf) };
}
