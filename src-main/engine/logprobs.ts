/**
 * The model's own log-probabilities on the host, from its logits: the input the unembedding graph
 * compares every row with (its `model_logprobs`, for KL). One place for the log-normaliser, which
 * the surprisal_paper convention reads too.
 */

/** ln Σ exp(v), in float64 (max-shifted). */
export function logSumExp(v: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < v.length; i++) if (v[i] > max) max = v[i];
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += Math.exp(v[i] - max);
  return max + Math.log(sum);
}

/**
 * logits [rows, dVocab] → log-probabilities [rows, dVocab] (fp32): logit − lse per row, with the
 * row's lse given (the graph's) or computed here.
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

/** The model's distributions a set of unembedded rows is measured against (KL): one per example, and which one each row reads. */
export interface ModelRows {
  /** [examples, dVocab] the model's own log-probabilities at each example's source position. */
  logprobs: Float32Array;
  /** [rows] the example each row compares with. */
  rows: number[];
}
