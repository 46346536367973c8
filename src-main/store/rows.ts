import { LogitscopeError } from '../errors.ts';
import type { ExampleResult, LayerResult } from '../sweep/extract.ts';
import type { ResolvedTechnique } from '../sweep/techniques.ts';
import { exampleKey, techniqueKey } from './keys.ts';
import type { LayerResultRow } from './types.ts';

/** Between the sweep's ExampleResults and the store's rows, and the rows' binary columns. */

/** The rows to save for a batch the extractor returned. */
export function rowsFromResults(results: readonly ExampleResult[], techniques: readonly ResolvedTechnique[]): LayerResultRow[] {
  const keyOf = new Map(techniques.map((t) => [t.id, techniqueKey(t)]));
  return results.flatMap((e) => {
    const eKey = exampleKey(e.tokens, e.position);
    return e.layers.map((r) => {
      const tKey = keyOf.get(r.technique);
      if (!tKey) throw new LogitscopeError('argument_invalid', `a result names technique "${r.technique}", which is not in the technique list`, 'techniques');
      return {
        exampleKey: eKey,
        techniqueKey: tKey,
        layer: r.layer,
        referenceTop1: e.reference_top1,
        top1: r.top1,
        surprisal: r.surprisal,
        surprisalPaper: r.surprisal_paper,
        topK: r.top_k,
        kl: r.kl,
        rank: r.rank,
        entropy: r.entropy,
      };
    });
  });
}

/** A stored row as the export record's per-layer entry, under the technique id the run uses. */
export function layerResultFromRow(row: LayerResultRow, technique: string): LayerResult {
  return { layer: row.layer, technique, top1: row.top1, surprisal: row.surprisal, surprisal_paper: row.surprisalPaper, kl: row.kl, rank: row.rank, entropy: row.entropy, top_k: row.topK };
}

/** Token ids as stored (Int32 LE). */
export function encodeTokens(tokens: readonly number[]): Buffer {
  const buf = Buffer.alloc(4 * tokens.length);
  tokens.forEach((v, i) => buf.writeInt32LE(v, 4 * i));
  return buf;
}

export function decodeTokens(buf: Buffer): number[] {
  return Array.from({ length: buf.length / 4 }, (_, i) => buf.readInt32LE(4 * i));
}

/**
 * Top-k as one blob: k Int32 LE ids, then k Float32 LE probabilities. One blob rather than two,
 * because reading each blob value costs a Buffer allocation, the largest cost of loading a run.
 */
export function encodeTopK(topK: LayerResultRow['topK']): Buffer {
  const k = topK.ids.length;
  const buf = Buffer.alloc(8 * k);
  for (let i = 0; i < k; i++) {
    buf.writeInt32LE(topK.ids[i], 4 * i);
    buf.writeFloatLE(topK.probs[i], 4 * (k + i));
  }
  return buf;
}

/** The first `k` entries of a stored top-k (which may hold more). */
export function decodeTopK(buf: Buffer, k: number): LayerResultRow['topK'] {
  const stored = buf.length / 8;
  const ids = new Array<number>(k);
  const probs = new Array<number>(k);
  for (let i = 0; i < k; i++) {
    ids[i] = buf.readInt32LE(4 * i);
    probs[i] = buf.readFloatLE(4 * (stored + i));
  }
  return { ids, probs };
}
