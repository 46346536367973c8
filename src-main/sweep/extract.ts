import { type Engine, residRow, type TargetPrefix, type UnembedResult } from '../engine/engine.ts';
import { type ResolvedTechnique, targetLayerOf } from './techniques.ts';

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
}

export interface ExampleResult {
  tokens: number[];
  position: number;
  /** The model's own top-1 at `position`, after all layers. */
  reference_top1: number;
  layers: LayerResult[];
}

export interface ExtractOptions {
  examples: Example[];
  techniques: ResolvedTechnique[];
  /** Source layers to read (0..nLayers-1, or -1 for the embeddings). */
  layers: number[];
  /** Per technique id, a subset of `layers` to compute instead of all of them. */
  layersByTechnique?: Record<string, number[]>;
  k: number;
}

/** The model's log-probabilities at one source position, kept only as long as its batch. */
class ModelDistribution {
  private readonly lse: number;
  readonly top1: number;
  constructor(private readonly logits: Float32Array) {
    let max = -Infinity;
    let top1 = 0;
    for (let i = 0; i < logits.length; i++) if (logits[i] > max) [max, top1] = [logits[i], i];
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
    this.lse = max + Math.log(sum);
    this.top1 = top1;
  }
  logprob(id: number): number {
    return this.logits[id] - this.lse;
  }
}

/** A row of work for the unembedding: which example, technique and layer it answers. */
interface RowKey {
  example: number;
  technique: string;
  layer: number;
}

/**
 * The fast algorithm: one batched source pass (prompts truncated after their position), the
 * target prompts' prefixes cached per engine, one single-position patched run per technique for
 * every (example, layer) row at once, and one batched unembedding of every row.
 */
export class Extractor {
  private readonly prefixes = new Map<string, TargetPrefix>();
  /** Rows per unembedding call: bounds the [rows, dVocab] logits the graph holds at once. */
  maxUnembedRows = 256;

  constructor(private readonly engine: Engine) {}

  async extract(opts: ExtractOptions): Promise<ExampleResult[]> {
    const { engine } = this;
    const { dModel } = engine.config;
    const { examples, techniques, layers } = opts;
    // Tokens after the position cannot influence it (causal attention), so they are not run.
    const src = await engine.sourcePass(examples.map((e) => ({ tokens: e.tokens.slice(0, e.position + 1), position: e.position })));
    const models = examples.map((_, b) => new ModelDistribution(src.logits.subarray(b * engine.config.dVocab, (b + 1) * engine.config.dVocab)));

    const keys: RowKey[] = [];
    const chunks: Float32Array[] = [];
    for (const t of techniques) {
      const tLayers = opts.layersByTechnique?.[t.id] ?? layers;
      const tKeys: RowKey[] = [];
      const vectors = new Float32Array(examples.length * tLayers.length * dModel);
      examples.forEach((_, b) =>
        tLayers.forEach((layer) => {
          vectors.set(residRow(src, layer, b, dModel), tKeys.length * dModel);
          tKeys.push({ example: b, technique: t.id, layer });
        }),
      );
      if (t.kind === 'logit_lens') {
        chunks.push(vectors);
      } else {
        const prefix = await this.prefixFor(t.promptTokens);
        chunks.push(await engine.patched({ prefix, vectors, injectLayers: tKeys.map((r) => targetLayerOf(t, r.layer)) }));
      }
      keys.push(...tKeys);
    }
    const resid = concat(chunks);
    const results: ExampleResult[] = examples.map((e, b) => ({ tokens: e.tokens, position: e.position, reference_top1: models[b].top1, layers: [] }));
    for (let start = 0; start < keys.length; start += this.maxUnembedRows) {
      const rowKeys = keys.slice(start, start + this.maxUnembedRows);
      const out = await engine.unembed({
        resid: resid.subarray(start * dModel, (start + rowKeys.length) * dModel),
        referenceIds: rowKeys.map((r) => models[r.example].top1),
        k: opts.k,
      });
      rowKeys.forEach((r, i) => results[r.example].layers.push(layerResult(r, out, i, models[r.example])));
    }
    return results;
  }

  private async prefixFor(tokens: number[]): Promise<TargetPrefix> {
    const key = tokens.join(',');
    let p = this.prefixes.get(key);
    if (!p) {
      p = await this.engine.prefix(tokens);
      this.prefixes.set(key, p);
    }
    return p;
  }
}

/**
 * The naive algorithm, as the seed ran it: for every (technique, layer, example), a full forward of
 * the source prompt and, for patchscopes, a full forward of the target prompt with the patch.
 * Kept to verify the fast path; it gives the same numbers.
 */
export async function extractNaive(engine: Engine, opts: ExtractOptions): Promise<ExampleResult[]> {
  const { dModel } = engine.config;
  const results: ExampleResult[] = [];
  for (const [b, e] of opts.examples.entries()) {
    const result: ExampleResult = { tokens: e.tokens, position: e.position, reference_top1: -1, layers: [] };
    for (const t of opts.techniques) {
      for (const layer of opts.layersByTechnique?.[t.id] ?? opts.layers) {
        const src = await engine.sourcePass([{ tokens: e.tokens, position: e.position }]);
        const model = new ModelDistribution(src.logits);
        result.reference_top1 = model.top1;
        let final = residRow(src, layer, 0, dModel);
        if (t.kind === 'patchscope') {
          final = await engine.naivePatched({ targetTokens: t.promptTokens, layer: targetLayerOf(t, layer), vector: final });
        }
        const out = await engine.unembed({ resid: final, referenceIds: [model.top1], k: opts.k });
        result.layers.push(layerResult({ example: b, technique: t.id, layer }, out, 0, model));
      }
    }
    results.push(result);
  }
  return results;
}

function layerResult(r: RowKey, out: UnembedResult, i: number, model: ModelDistribution): LayerResult {
  const ids = Array.from(out.topkIds.subarray(i * out.k, (i + 1) * out.k));
  const logprobs = Array.from(out.topkLogprobs.subarray(i * out.k, (i + 1) * out.k));
  return {
    layer: r.layer,
    technique: r.technique,
    top1: ids[0],
    surprisal: -out.referenceLogprob[i],
    surprisal_paper: -model.logprob(ids[0]),
    // float32, as the results cache stores them: a cached result reads back exactly as computed.
    top_k: { ids, probs: logprobs.map((lp) => Math.fround(Math.exp(lp))) },
  };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
