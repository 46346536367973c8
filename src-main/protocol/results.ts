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
  top_k: { ids: number[]; probs: number[] };
  /**
   * Entropy (nats) of the technique's full next-token distribution, computed in the unembedding
   * graph. Only when the extraction asked for it (ExtractOptions.entropy); never stored.
   */
  entropy?: number;
}

export interface ExampleResult {
  tokens: number[];
  position: number;
  /** The model's own top-1 at `position`, after all layers. */
  reference_top1: number;
  layers: LayerResult[];
}

/** Row i of an unembedding as the stored per-layer entry (and, with `entropy`, its distribution's entropy). */
export function layerResult(
  r: { technique: string; layer: number },
  out: { k: number; topkIds: Int32Array; topkLogprobs: Float32Array; referenceLogprob: Float32Array; entropy?: Float32Array },
  i: number,
  surprisalPaper: number,
  entropy = false,
): LayerResult {
  const ids = Array.from(out.topkIds.subarray(i * out.k, (i + 1) * out.k));
  const logprobs = Array.from(out.topkLogprobs.subarray(i * out.k, (i + 1) * out.k));
  return {
    layer: r.layer,
    technique: r.technique,
    top1: ids[0],
    surprisal: -out.referenceLogprob[i],
    surprisal_paper: surprisalPaper,
    // float32, as the results cache stores them: a cached result reads back exactly as computed.
    top_k: { ids, probs: logprobs.map((lp) => Math.fround(Math.exp(lp))) },
    ...(entropy && { entropy: out.entropy![i] }),
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
