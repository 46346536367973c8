import { type Engine, residRow, type TechniqueRows } from '../engine/engine.ts';
import { LogitscopeError } from '../errors.ts';
import { lensFolder, tunedLensExtract } from '../lens/apply.ts';
import type { LensRecord } from '../protocol/lens-settings.ts';
import { type Example, type ExampleResult, layerResult, logSoftmaxRows } from '../protocol/results.ts';
import { isTunedLens, type ResolvedTechnique, targetLayerOf } from '../protocol/techniques.ts';

export interface ExtractOptions {
  examples: Example[];
  techniques: ResolvedTechnique[];
  /** Source layers to read (0..nLayers-1, or -1 for the embeddings). */
  layers: number[];
  /** Per technique id, a subset of `layers` to compute instead of all of them. */
  layersByTechnique?: Record<string, number[]>;
  k: number;
  /** How errors name each example (e.g. its ordinal in the sweep); "example i (position p)" by default. */
  names?: string[];
  /** Measure each row (LayerResult kl, rank, entropy); on unless false (the bench's comparison without them). */
  measures?: boolean;
  /** Per example, the token id its rows follow (LayerResult.tracked); the fast path only. */
  track?: number[];
}

/**
 * The fast algorithm, one engine call per batch: one batched source pass (prompts truncated after
 * their position), the target prompts' prefixes cached in the engine's worker, one single-position
 * patched run per technique for every (example, layer) row at once, one tuned-lens map per lens
 * technique (all its rows at once), and batched unembedding of every row. The residuals never
 * leave the worker; only the stored numbers come back.
 */
export class Extractor {
  /** Rows per unembedding call: bounds the [rows, dVocab] logits the graph holds at once. */
  maxUnembedRows = 256;
  /** Measure every row unless the call says otherwise (ExtractOptions.measures). */
  measures = true;

  constructor(private readonly engine: Engine) {}

  async extract(opts: ExtractOptions): Promise<ExampleResult[]> {
    const { examples, techniques, layers } = opts;
    const tech: TechniqueRows[] = [];
    for (const t of techniques) {
      const tLayers = opts.layersByTechnique?.[t.id] ?? layers;
      const example = examples.flatMap((_, b) => tLayers.map(() => b));
      const sourceLayer = examples.flatMap(() => tLayers);
      tech.push({
        id: t.id,
        prefixTokens: t.kind === 'patchscope' ? t.promptTokens : null,
        example,
        sourceLayer,
        injectLayer: t.kind === 'patchscope' ? sourceLayer.map((l) => targetLayerOf(t, l)) : [],
        // The tuned lens is the logit lens with each row mapped first, in the engine's worker.
        lens: isTunedLens(t) ? { dir: await lensFolder(this.engine, fittedLens(t)) } : null,
      });
    }
    const out = await this.engine.extractBatch({
      // Tokens after the position cannot influence it (causal attention), so they are not run.
      items: examples.map((e) => ({ tokens: e.tokens.slice(0, e.position + 1), position: e.position })),
      names: examples.map((e, i) => opts.names?.[i] ?? `example ${i} (position ${e.position})`),
      techniques: tech,
      k: opts.k,
      maxUnembedRows: this.maxUnembedRows,
      measures: opts.measures ?? this.measures,
      track: opts.track,
    });
    const results: ExampleResult[] = examples.map((e, b) => ({ tokens: e.tokens, position: e.position, reference_top1: out.referenceTop1[b], layers: [] }));
    let row = 0;
    for (const t of tech) {
      t.example.forEach((b, r) => {
        const l = layerResult({ technique: t.id, layer: t.sourceLayer[r] }, out, row, -out.modelLogprobOfTop1[row], out.measures);
        if (out.tracked) l.tracked = { id: opts.track![b], logprob: out.tracked.logprob[row], rank: out.tracked.rank[row] };
        results[b].layers.push(l);
        row++;
      });
    }
    return results;
  }
}

/**
 * The naive algorithm, as the seed ran it: for every (technique, layer, example), a full forward of
 * the source prompt and, for patchscopes, a full forward of the target prompt with the patch.
 * Kept to verify the fast path; it gives the same numbers.
 */
export async function extractNaive(engine: Engine, opts: ExtractOptions): Promise<ExampleResult[]> {
  const { dModel, nLayers } = engine.config;
  const results: ExampleResult[] = [];
  for (const e of opts.examples) {
    const result: ExampleResult = { tokens: e.tokens, position: e.position, reference_top1: -1, layers: [] };
    for (const t of opts.techniques) {
      if (isTunedLens(t)) {
        // One example at a time, composed from outside the engine (lens/apply.ts): its own source
        // pass, the lens worker's map and the engine's unembed op, a route independent of the batch's.
        const layers = opts.layersByTechnique?.[t.id] ?? opts.layers;
        const referenceTop1 = result.reference_top1 >= 0 ? [result.reference_top1] : undefined;
        const [r] = await tunedLensExtract(engine, { examples: [e], id: t.id, lens: fittedLens(t), layers, k: opts.k, referenceTop1, measures: opts.measures ?? true });
        if (result.reference_top1 < 0) result.reference_top1 = r.reference_top1;
        result.layers.push(...r.layers);
        continue;
      }
      for (const layer of opts.layersByTechnique?.[t.id] ?? opts.layers) {
        const src = await engine.sourcePass([{ tokens: e.tokens, position: e.position }]);
        if (result.reference_top1 < 0) {
          // The reference by the fast path's route: the unembedding graph on the last resid row.
          const own = await engine.unembed({ resid: residRow(src, nLayers - 1, 0, dModel), referenceIds: [0], k: 1 });
          result.reference_top1 = own.topkIds[0];
        }
        const model = logSoftmaxRows(src.logits, engine.config.dVocab); // [1, dVocab]
        let final = residRow(src, layer, 0, dModel);
        if (t.kind === 'patchscope') {
          final = await engine.naivePatched({ targetTokens: t.promptTokens, layer: targetLayerOf(t, layer), vector: final });
        }
        const out = await engine.unembed({ resid: final, referenceIds: [result.reference_top1], k: opts.k, model: { logprobs: model, rows: [0] } });
        const measured = opts.measures ?? true;
        result.layers.push(layerResult({ technique: t.id, layer }, out, 0, -model[out.topkIds[0]], measured ? out.measures : undefined));
      }
    }
    results.push(result);
  }
  return results;
}

function fittedLens(t: ResolvedTechnique): LensRecord {
  if (t.kind !== 'tuned_lens' || !t.lens) throw new LogitscopeError('argument_invalid', 'the tuned lens has not been fitted for this sweep', 'techniques');
  return t.lens;
}
