/**
 * Reading a layer through the fitted tuned lens: rows h_l → h_l·W_l + b_l (one batched MatMul in a
 * small onnxruntime session, graphs.ts applyGraph), then the engine's own unembedding (ln_f +
 * lm_head, top-k, the reference's log-probability), as for every other technique.
 *
 * Two routes. A sweep's fast path (sweep/extract.ts Extractor) names the lens's folder
 * (`lensFolder`) in its batch, and the engine's worker maps the rows inside the batch. The route
 * here, `tunedLensExtract`, composes with the engine from outside instead: the engine's source pass
 * gives the residuals, the lens worker maps them, the engine's unembed op reads the mapped rows.
 * The naive path uses it, so the two check each other.
 */
import { type Engine } from '../engine/engine.ts';
import { LogitscopeError } from '../errors.ts';
import { type Example, type ExampleResult, type LayerResult, layerResult, logSoftmaxRows } from '../protocol/results.ts';
import { ensureTunedLens } from './fit.ts';
import { lensDir, TUNED_LENS_VERSION } from './lens.ts';
import { residHook, residIndex } from '../protocol/hooks.ts';
import type { LensRecord } from '../protocol/lens-settings.ts';
import { applyLens, engineDevice } from './sessions.ts';

/**
 * The lens's folder for this engine, checked: fitted for the loaded model. A lens no longer in the
 * cache (the cache folder was cleared) is fitted again from the settings the run recorded, which
 * give the same lens (same key), so resuming such a run loses nothing.
 */
export async function lensFolder(engine: Engine, lens: LensRecord): Promise<string> {
  if (lens.modelIdentity !== engine.info.identity) {
    throw new LogitscopeError('argument_invalid', `the tuned lens ${lens.key.slice(0, 12)} was fitted for another model`, 'techniques');
  }
  if (lens.version !== TUNED_LENS_VERSION) {
    // Its lens cannot be opened unchecked nor fitted again as it was: rows of two lenses would mix under one key.
    throw new LogitscopeError(
      'argument_invalid',
      `the tuned lens ${lens.key.slice(0, 12)} was fitted by an older version of the lens (v${lens.version}; this code fits v${TUNED_LENS_VERSION}, with a held-out check and a content hash) and cannot be used again: start a new sweep, which fits a v${TUNED_LENS_VERSION} lens`,
      'techniques',
    );
  }
  const dir = lensDir(engine.info.cacheDir, lens.key);
  const { key: _key, examples: _examples, ...settings } = lens;
  // ensureTunedLens reads the folder checked (content hash, held-out check), and fits the lens
  // again when it is missing or refused.
  const { contentHash: _hash, ...fitted } = settings;
  const { file } = await ensureTunedLens(engine, fitted);
  if (file.key !== lens.key || file.nLayers !== engine.config.nLayers || file.dModel !== engine.config.dModel) {
    throw new LogitscopeError('cache_corrupt', `the tuned lens in ${dir} does not match the run's record (key ${lens.key.slice(0, 12)}); delete that folder to fit it again`, dir);
  }
  if (lens.contentHash !== undefined && file.weightsSha256 !== lens.contentHash) {
    // Fitted again to other bytes (another device's rounding): the run's rows so far came from the old lens.
    throw new LogitscopeError(
      'argument_invalid',
      `the tuned lens ${lens.key.slice(0, 12)} was fitted again and its weights differ from those this run read through (sha256 ${lens.contentHash.slice(0, 12)}…, now ${file.weightsSha256.slice(0, 12)}…); start a new sweep instead of resuming this one`,
      'techniques',
    );
  }
  return dir;
}

/**
 * Maps residual rows [layers.length, batch, d] (layer-major, as the engine's resid minus the
 * unused layers) through the lens: the last block's rows are passed on unchanged (its map is the
 * identity), the rest go through one session run.
 */
export async function mapRows(engine: Engine, lens: LensRecord, rows: Float32Array, layers: readonly number[], batch: number): Promise<Float32Array> {
  const { nLayers, dModel: d } = engine.config;
  const dir = await lensFolder(engine, lens);
  const out = Float32Array.from(rows);
  const mapped = layers.map((l, i) => [l, i] as const).filter(([l]) => l !== nLayers - 1);
  if (mapped.length === 0) return out;
  const input = new Float32Array(mapped.length * batch * d);
  mapped.forEach(([, i], j) => input.set(rows.subarray(i * batch * d, (i + 1) * batch * d), j * batch * d));
  const m = await applyLens({ device: engineDevice(engine), dir, nLayers, dModel: d, rows: input, layerIndex: mapped.map(([l]) => residIndex(residHook(l))), batch });
  mapped.forEach(([, i], j) => out.set(m.subarray(j * batch * d, (j + 1) * batch * d), i * batch * d));
  return out;
}

/** Rows per unembed call here: bounds the [rows, dVocab] logits the graph holds at once. */
const UNEMBED_ROWS = 256;

/**
 * Tuned-lens rows of a batch of examples at `layers`: one source pass, the map, the unembedding.
 * `referenceTop1` (the model's own top-1 per example) is taken from the caller when another
 * technique already computed it, so every technique of an example shares it. With `measures`
 * (the default), each row carries its measures (LayerResult kl, rank, entropy).
 */
export async function tunedLensExtract(
  engine: Engine,
  o: { examples: Example[]; id: string; lens: LensRecord; layers: readonly number[]; k: number; referenceTop1?: readonly number[]; measures?: boolean },
): Promise<ExampleResult[]> {
  const { nLayers, dModel: d, dVocab } = engine.config;
  const B = o.examples.length;
  const src = await engine.sourcePass(o.examples.map((e) => ({ tokens: e.tokens.slice(0, e.position + 1), position: e.position })));
  let reference = o.referenceTop1;
  if (!reference) {
    // The reference by the fast path's route: the unembedding graph on the last residual row.
    const own = await engine.unembed({ resid: src.resid.subarray(nLayers * B * d, (nLayers + 1) * B * d), referenceIds: new Array(B).fill(0), k: 1 });
    reference = Array.from(own.topkIds);
  }
  // The model's own log-probabilities per example: the paper's surprisal −ln p_model(row's top-1), and KL.
  const model = logSoftmaxRows(src.logits, dVocab); // [B, dVocab]

  const rows = new Float32Array(o.layers.length * B * d);
  o.layers.forEach((l, i) => {
    const at = residIndex(residHook(l));
    rows.set(src.resid.subarray(at * B * d, (at + 1) * B * d), i * B * d);
  });
  const mapped = await mapRows(engine, o.lens, rows, o.layers, B);

  const results: ExampleResult[] = o.examples.map((e, b) => ({ tokens: e.tokens, position: e.position, reference_top1: reference![b], layers: [] }));
  const total = o.layers.length * B;
  const step = UNEMBED_ROWS;
  // Rows are layer-major; results are pushed per example in layer order.
  const perRow: LayerResult[] = new Array(total);
  for (let start = 0; start < total; start += step) {
    const n = Math.min(step, total - start);
    const refIds = Array.from({ length: n }, (_, r) => reference![(start + r) % B]);
    const u = await engine.unembed({ resid: mapped.subarray(start * d, (start + n) * d), referenceIds: refIds, k: o.k, model: { logprobs: model, rows: refIds.map((_, r) => (start + r) % B) } });
    for (let r = 0; r < n; r++) {
      const row = start + r;
      const b = row % B;
      const paper = -model[b * dVocab + u.topkIds[r * u.k]];
      perRow[row] = layerResult({ technique: o.id, layer: o.layers[Math.floor(row / B)] }, u, r, paper, (o.measures ?? true) ? u.measures : undefined);
    }
  }
  for (let b = 0; b < B; b++) for (let i = 0; i < o.layers.length; i++) results[b].layers.push(perRow[i * B + b]);
  return results;
}
