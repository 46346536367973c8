/**
 * What an extraction gives per example and layer: the shape the sweep writes, the store keeps,
 * exports print and the inspector shows. Pure, so every layer that reads a result names it here.
 */

/** One source prompt and the position whose next token is being extracted. */
export interface Example {
  tokens: number[];
  position: number;
}

/** One technique at one layer for one example (the export record's per-layer entry). */
export interface LayerResult {
  layer: number;
  technique: string;
  top1: number;
  /** −ln p_technique(reference top-1), nats: the seed's convention. */
  surprisal: number;
  /** −ln p_model(technique's top-1) at the source position, nats: the Patchscopes paper's convention. */
  surprisal_paper: number;
  /**
   * The per-row measures (docs/PROTOCOL.md "Per-row measures"), computed in the unembedding graph
   * over the full vocabulary: KL(p_model ‖ p_technique) and the technique's entropy in nats, and the
   * 0-based rank of the reference top-1 under the technique. null where not measured: rows stored
   * before the measures existed (schema version < 5), or an extraction run with measures off.
   */
  kl: number | null;
  rank: number | null;
  entropy: number | null;
  top_k: { ids: number[]; probs: number[] };
  /** With ExtractOptions.track: the followed token's exact log-probability and rank (strictly greater logits) here; never stored. */
  tracked?: { id: number; logprob: number; rank: number };
}

/** The unembedding graph's per-row measures (docs/PROTOCOL.md "Per-row measures"). */
export interface RowMeasures {
  /** [rows] nats, of each row's full next-token distribution. */
  entropy: Float32Array;
  /** [rows] nats, KL(p_model ‖ p_row) over the full vocabulary. */
  kl: Float32Array;
  /** [rows] ids whose logit is strictly greater than the reference id's (0-based rank). */
  rank: Int32Array;
}

export interface ExampleResult {
  tokens: number[];
  position: number;
  /** The model's own top-1 at `position`, after all layers. */
  reference_top1: number;
  layers: LayerResult[];
}

/** Row i of an unembedding as the stored per-layer entry, with its measures when they were computed. */
export function layerResult(
  r: { technique: string; layer: number },
  out: { k: number; topkIds: Int32Array; topkLogprobs: Float32Array; referenceLogprob: Float32Array },
  i: number,
  surprisalPaper: number,
  measures?: RowMeasures,
): LayerResult {
  const ids = Array.from(out.topkIds.subarray(i * out.k, (i + 1) * out.k));
  const logprobs = Array.from(out.topkLogprobs.subarray(i * out.k, (i + 1) * out.k));
  return {
    layer: r.layer,
    technique: r.technique,
    top1: ids[0],
    surprisal: -out.referenceLogprob[i],
    surprisal_paper: surprisalPaper,
    kl: measures ? measures.kl[i] : null,
    rank: measures ? measures.rank[i] : null,
    entropy: measures ? measures.entropy[i] : null,
    // float32, as the results cache stores them: a cached result reads back exactly as computed.
    top_k: { ids, probs: logprobs.map((lp) => Math.fround(Math.exp(lp))) },
  };
}

/** ln Σ exp(v), shifted by the maximum so that no exp overflows: the normaliser of log-probabilities from logits. */
export function logSumExp(v: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < v.length; i++) if (v[i] > max) max = v[i];
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += Math.exp(v[i] - max);
  return max + Math.log(sum);
}

/**
 * logits [rows, dVocab] → log-probabilities [rows, dVocab] (fp32): logit − lse per row, with the
 * rows' lse given (the unembedding graph's) or computed here. The model's own rows in this form are
 * what the unembedding graph measures every row against (its `model_logprobs`, for KL).
 */
export function logSoftmaxRows(logits: Float32Array, dVocab: number, lse?: ArrayLike<number>): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r * dVocab < logits.length; r++) {
    const row = logits.subarray(r * dVocab, (r + 1) * dVocab);
    const z = lse ? lse[r] : logSumExp(row);
    for (let i = 0; i < dVocab; i++) out[r * dVocab + i] = row[i] - z;
  }
  return out;
}
