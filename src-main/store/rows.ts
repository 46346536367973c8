import { LogitscopeError } from '../errors.ts';
import type { Example, ExampleResult } from '../protocol/results.ts';
import { readoutsOf, type Readout } from '../sweep/readout.ts';
import type { ResolvedTechnique } from '../protocol/techniques.ts';
import { exampleKey, techniqueKey } from './keys.ts';
import type { LayerResultRow } from './types.ts';

/** Between readouts and the store's rows, and the rows' binary columns. */

/** The rows to save for examples and their readouts (the extractor's, or another store's). */
export function rowsFromReadouts(examples: readonly { example: Example; readouts: readonly Readout[] }[], techniques: readonly ResolvedTechnique[]): LayerResultRow[] {
  const keyOf = new Map(techniques.map((t) => [t.id, techniqueKey(t)]));
  return examples.flatMap(({ example, readouts }) => {
    const eKey = exampleKey(example.tokens, example.position);
    return readouts.map(({ technique, ...r }) => {
      const tKey = keyOf.get(technique);
      if (!tKey) throw new LogitscopeError('argument_invalid', `a result names technique "${technique}", which is not in the technique list`, 'techniques');
      return { exampleKey: eKey, techniqueKey: tKey, ...r };
    });
  });
}

/** The rows to save for a batch the extractor returned. */
export function rowsFromResults(results: readonly ExampleResult[], techniques: readonly ResolvedTechnique[]): LayerResultRow[] {
  return rowsFromReadouts(results.map((e) => ({ example: e, readouts: readoutsOf(e) })), techniques);
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
