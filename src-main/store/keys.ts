import { createHash } from 'node:crypto';
import type { LoadedModel } from '../engine/worker-protocol.ts';
import type { ResolvedTechnique } from '../protocol/techniques.ts';

/**
 * Cache keys: each covers exactly what determines a result, so equal keys mean the stored numbers
 * can be reused and different keys can never be mixed up. Prompt text and technique ids are left
 * out on purpose: the tokens decide the result, and a renamed technique reuses its results.
 */

/**
 * Bump whenever a change to the graphs or the numerics (kernels, dtypes, metric definitions) can
 * alter any stored number, so that rows computed by the old code are not reused: they stay in the
 * database under the old key, and every sweep computes afresh. A pure refactor needs no bump.
 */
export const NUMERICS_VERSION = 2;

/**
 * The model part of a result's key: the checkpoint's identity (a hash of all its bytes), the
 * compute dtype and the device, since fp16 and fp32, or CPU and CUDA kernels, can flip a top-1,
 * and the numerics version of the code that computed it. The checkpoint's path is not part of it:
 * a copy elsewhere gives the same numbers.
 */
export function modelKey(m: Pick<LoadedModel, 'identity' | 'computeDtype' | 'device'>): string {
  return `${m.identity}:${m.computeDtype}:${m.device}:numerics-${NUMERICS_VERSION}`;
}

/** sha256 over the position and the tokens as fed (BOS included), both as 32-bit little-endian. */
export function exampleKey(tokens: readonly number[], position: number): string {
  const buf = Buffer.alloc(4 * (tokens.length + 1));
  buf.writeUInt32LE(position, 0);
  tokens.forEach((t, i) => buf.writeInt32LE(t, 4 * (i + 1)));
  return createHash('sha256').update('logitscope-example-v1\0').update(buf).digest('hex');
}

/** sha256 over the kind, the target prompt's tokens (BOS included) and the target layer rule. */
export function techniqueKey(t: ResolvedTechnique): string {
  // A tuned lens's rows are decided by the fitted lens (its key covers the model, train slice, seed, ridge, version).
  const determining =
    t.kind === 'logit_lens'
      ? { kind: t.kind }
      : t.kind === 'tuned_lens'
        ? // and by its content hash, so a lens fitted again never serves the old lens's rows (absent in old runs' records)
          { kind: t.kind, lens: t.lens?.key ?? null, ...(t.lens?.contentHash !== undefined && { content: t.lens.contentHash }) }
        : { kind: t.kind, promptTokens: t.promptTokens, targetLayer: t.targetLayer.kind === 'same' ? 'same' : t.targetLayer.layer };
  return createHash('sha256').update('logitscope-technique-v1\0').update(JSON.stringify(determining)).digest('hex');
}
