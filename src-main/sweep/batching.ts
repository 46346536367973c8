import os from 'node:os';
import type { ModelConfig } from '../engine/config.ts';
import { WORKING_SET_BYTES } from '../engine/model-plan.ts';

export interface BatchLimits {
  /** Padded tokens per source pass (batch × longest prompt). */
  sourceTokens: number;
  /** Examples per batch, bounding the patched rows (examples × layers per technique). */
  examples: number;
  /** Rows per unembedding call; each holds dVocab logits several times over. */
  unembedRows: number;
}

/**
 * Batch sizes from a memory budget: by default a quarter of the free memory, at most 2 GiB.
 * The per-token and per-row costs are the largest activations onnxruntime keeps alive at once
 * (one block's q/k/v/MLP hidden and the attention scores; the logits and their log-softmax).
 */
export function batchLimits(c: ModelConfig, opts: { layers: number; budgetBytes?: number; longest: number }): BatchLimits {
  const budget = opts.budgetBytes ?? Math.min(WORKING_SET_BYTES, os.freemem() / 4);
  // A gated MLP (SwiGLU, GeGLU) holds gate, up and their product: three d_mlp-wide rows, not two.
  const mlp = (c.gatedMlp ? 3 : 2) * c.dMlp;
  const perToken = 4 * (8 * c.dModel + mlp + 2 * c.nHeads * opts.longest);
  const perRow = 4 * (8 * c.dModel + mlp);
  const perUnembedRow = 4 * 3 * c.dVocab;
  return {
    sourceTokens: Math.max(opts.longest, Math.floor(budget / perToken)),
    examples: Math.max(1, Math.floor(budget / (perRow * Math.max(1, opts.layers)))),
    unembedRows: Math.max(1, Math.min(4096, Math.floor(budget / perUnembedRow))),
  };
}

/**
 * Splits example ordinals into batches of similar length (less padding), sorting only within
 * windows of consecutive examples, so that the live means are not biased toward short prompts
 * early in a run. (A window is a fair sample only where the examples are in random order, as in
 * the shuffled `patchscopes` preset; the `logitscope` preset keeps the files' order.)
 */
export function planBatches(lengths: { ordinal: number; length: number }[], limits: BatchLimits, window = 256): number[][] {
  const batches: number[][] = [];
  for (let w = 0; w < lengths.length; w += window) {
    const sorted = lengths.slice(w, w + window).sort((a, b) => a.length - b.length);
    let batch: number[] = [];
    for (const { ordinal, length } of sorted) {
      // Sorted ascending, so this example is the batch's longest: the padded size is length × count.
      if (batch.length > 0 && (length * (batch.length + 1) > limits.sourceTokens || batch.length >= limits.examples)) {
        batches.push(batch);
        batch = [];
      }
      batch.push(ordinal);
    }
    if (batch.length > 0) batches.push(batch);
  }
  return batches;
}

/** Examples in the first window of a sweep, and the most in any window (the length-sorting span). */
const FIRST_WINDOW = 8;
const MAX_WINDOW = 256;

/**
 * A sweep's batches: windows of consecutive examples of 8, 16, 32, … up to 256, each split by
 * length (planBatches). The schedule depends on the ordinals alone, never on time, for a reason
 * of numbers, not of speed: onnxruntime's results round differently with the batch's shape (the
 * padded length, the rows beside an example), so an example's stored floats are those of the batch
 * it ran in. A resume, a repeat or a longer sweep of the same slice (its first windows are the
 * shorter one's) must form the same batches to store the same numbers as an uninterrupted run.
 * (Windows that grew or shrank with the time they took made a loaded machine's batches differ.)
 * Small first windows still bring the first progress soon; progress comes after every batch.
 */
export function* sweepBatches(lengths: { ordinal: number; length: number }[], limits: BatchLimits): Generator<number[]> {
  for (let start = 0, size = FIRST_WINDOW; start < lengths.length; start += size, size = Math.min(size * 2, MAX_WINDOW)) {
    const window = lengths.slice(start, start + size);
    yield* planBatches(window, limits, window.length);
  }
}
