/**
 * What a model is and what it needs on a device, from its config alone (no weights read): the
 * parameter count, and the device-memory plan that doctor and the model panel show.
 */
import type { ModelConfig } from './config.ts';
import type { ComputeType } from './graph/layers.ts';
import { weightShapes } from './graph/weight-names.ts';

/**
 * The most memory a sweep's batches are sized to keep alive at once (sweep/batching.ts): the
 * activations of one source pass, the patched rows, or one unembedding's logits.
 */
export const WORKING_SET_BYTES = 2 * 1024 ** 3;

const BYTES: Record<ComputeType, number> = { float32: 4, float16: 2 };

/** Every weight the graphs read, counted once (a tied head shares the embedding's). */
export function parameterCount(c: ModelConfig): number {
  let n = 0;
  for (const shape of weightShapes(c).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

export interface MemoryPlan {
  dtype: ComputeType;
  /** The weights in the compute dtype: the sessions hold them on the device (converted once where the checkpoint's dtype differs). */
  weightBytes: number;
  /** The most the batches keep alive besides (WORKING_SET_BYTES), a cap rather than an estimate. */
  workingBytes: number;
  totalBytes: number;
}

export function memoryPlan(c: ModelConfig, dtype: ComputeType): MemoryPlan {
  const weightBytes = parameterCount(c) * BYTES[dtype];
  return { dtype, weightBytes, workingBytes: WORKING_SET_BYTES, totalBytes: weightBytes + WORKING_SET_BYTES };
}
