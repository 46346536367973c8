/**
 * An independent float64 GPT-J forward, written straight from the math (Hugging Face `GPTJModel`),
 * used only by tests to check the ONNX engine. Plain loops over Float64Array and nothing clever:
 * it runs on tiny models (d_model 64, a few layers, a dozen tokens), and its value is that every
 * line can be checked by eye against the paper / HF source.
 */
import { blockWeightNames, type GptjConfig } from '../../src-main/engine/config.ts';

export type Weights = ReadonlyMap<string, Float64Array>;

export interface ReferencePatch {
  /** Output of block `layer` is overwritten; -1 overwrites the embedding (resid_pre of block 0). */
  layer: number;
  position: number;
  vector: Float64Array;
}

export interface ReferenceResult {
  /** [position] -> d_model: resid_pre of block 0 (after any layer -1 patch). */
  embeddings: Float64Array[];
  /** [layer][position] -> d_model: blocks.{layer}.hook_resid_post (after any patch at that layer). */
  residPost: Float64Array[][];
  /** [position] -> d_vocab. */
  logits: Float64Array[];
}

export function weight(weights: Weights, name: string, length: number): Float64Array {
  const w = weights.get(name);
  if (!w) throw new Error(`reference: weight ${name} is missing`);
  if (w.length !== length) throw new Error(`reference: weight ${name} has ${w.length} elements, expected ${length}`);
  return w;
}

/** y = W x (+ b) with W in HF Linear layout [out, in], row-major. */
export function linear(w: Float64Array, x: Float64Array, outDim: number, bias?: Float64Array): Float64Array {
  const inDim = x.length;
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let s = bias ? bias[o] : 0;
    for (let i = 0; i < inDim; i++) s += w[o * inDim + i] * x[i];
    y[o] = s;
  }
  return y;
}

/** LayerNorm with the biased (population) variance, as torch.nn.LayerNorm computes it. */
export function layerNorm(x: Float64Array, gamma: Float64Array, beta: Float64Array, eps: number): Float64Array {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (x[i] - mean) ** 2;
  variance /= n;
  const inv = 1 / Math.sqrt(variance + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
  return y;
}

/** gelu_new: the tanh approximation GPT-2 and GPT-J use. */
export function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/**
 * GPT-J rotary ("rotate every two"): dims (2i, 2i+1) of a head form a pair, rotated by the angle
 * position / 10000^(2i / rotaryDim); dims from rotaryDim on pass through. HF's form is
 * `x * cos + rotate_every_two(x) * sin` with rotate_every_two(x)[2i] = -x[2i+1], [2i+1] = x[2i],
 * and sin/cos repeated per pair (repeat_interleave), which is the per-pair formula below.
 * Pairs are NOT (i, i + rotaryDim/2) as in GPT-NeoX / Llama ("rotate half").
 */
export function applyRotary(head: Float64Array, position: number, rotaryDim: number): Float64Array {
  const out = Float64Array.from(head);
  for (let i = 0; i < rotaryDim / 2; i++) {
    const angle = position / 10000 ** ((2 * i) / rotaryDim);
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const a = head[2 * i];
    const b = head[2 * i + 1];
    out[2 * i] = a * cos - b * sin;
    out[2 * i + 1] = b * cos + a * sin;
  }
  return out;
}

export function logSoftmax(v: Float64Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < v.length; i++) max = Math.max(max, v[i]);
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += Math.exp(v[i] - max);
  const logZ = max + Math.log(sum);
  return v.map((x) => x - logZ);
}

/** ln_f + lm_head on one residual vector: the logit lens, and the model's own head on the last layer. */
export function referenceLogitLens(config: GptjConfig, weights: Weights, h: Float64Array): Float64Array {
  const { dModel, dVocab } = config;
  const x = layerNorm(
    h,
    weight(weights, 'transformer.ln_f.weight', dModel),
    weight(weights, 'transformer.ln_f.bias', dModel),
    config.layerNormEps,
  );
  return linear(weight(weights, 'lm_head.weight', dVocab * dModel), x, dVocab, weight(weights, 'lm_head.bias', dVocab));
}

/**
 * One GPT-J block over all positions. Attention and MLP both read ln_1(h) (parallel residual), so
 * there is no resid_mid: h_next = h + attn(ln_1(h)) + mlp(ln_1(h)).
 */
function block(config: GptjConfig, weights: Weights, l: number, h: Float64Array[]): Float64Array[] {
  const { dModel, nHeads, dHead, dMlp, rotaryDim } = config;
  const w = blockWeightNames(l);
  const mm = dModel * dModel;
  const ln1w = weight(weights, w.ln1Weight, dModel);
  const ln1b = weight(weights, w.ln1Bias, dModel);
  const wq = weight(weights, w.qProj, mm);
  const wk = weight(weights, w.kProj, mm);
  const wv = weight(weights, w.vProj, mm);
  const wo = weight(weights, w.outProj, mm);
  const fcIn = weight(weights, w.fcIn, dMlp * dModel);
  const fcInB = weight(weights, w.fcInBias, dMlp);
  const fcOut = weight(weights, w.fcOut, dModel * dMlp);
  const fcOutB = weight(weights, w.fcOutBias, dModel);

  const T = h.length;
  const x = h.map((hp) => layerNorm(hp, ln1w, ln1b, config.layerNormEps)); // [T] -> dModel
  // Split into heads of dHead and rotate each by its own position: [nHeads] -> dHead.
  const rotatedHeads = (proj: Float64Array, p: number) =>
    Array.from({ length: nHeads }, (_, n) => applyRotary(proj.subarray(n * dHead, (n + 1) * dHead), p, rotaryDim));
  const q = x.map((xp, p) => rotatedHeads(linear(wq, xp, dModel), p)); // [T][nHeads] -> dHead
  const k = x.map((xp, p) => rotatedHeads(linear(wk, xp, dModel), p)); // [T][nHeads] -> dHead
  const v = x.map((xp) => linear(wv, xp, dModel)); // [T] -> dModel (heads side by side)

  const out: Float64Array[] = [];
  for (let p = 0; p < T; p++) {
    const z = new Float64Array(dModel); // heads concatenated, before out_proj
    for (let n = 0; n < nHeads; n++) {
      // Causal: position p attends to 0..p only.
      const scores = new Float64Array(p + 1);
      for (let s = 0; s <= p; s++) {
        let dot = 0;
        for (let d = 0; d < dHead; d++) dot += q[p][n][d] * k[s][n][d];
        scores[s] = dot / Math.sqrt(dHead);
      }
      const logProbs = logSoftmax(scores);
      for (let s = 0; s <= p; s++) {
        const a = Math.exp(logProbs[s]);
        for (let d = 0; d < dHead; d++) z[n * dHead + d] += a * v[s][n * dHead + d];
      }
    }
    const attn = linear(wo, z, dModel);
    const hidden = linear(fcIn, x[p], dMlp, fcInB).map(geluNew);
    const mlp = linear(fcOut, hidden, dModel, fcOutB);
    const next = new Float64Array(dModel);
    for (let i = 0; i < dModel; i++) next[i] = h[p][i] + attn[i] + mlp[i];
    out.push(next);
  }
  return out;
}

export function referenceForward(opts: {
  config: GptjConfig;
  weights: Weights;
  tokens: number[];
  patch?: ReferencePatch;
}): ReferenceResult {
  const { config, weights, tokens, patch } = opts;
  const { dModel, dVocab, nLayers } = config;
  if (tokens.length === 0) throw new Error('reference: no tokens');
  if (patch) {
    if (!(Number.isInteger(patch.layer) && patch.layer >= -1 && patch.layer < nLayers)) throw new Error(`reference: patch layer ${patch.layer} out of range`);
    if (!(Number.isInteger(patch.position) && patch.position >= 0 && patch.position < tokens.length)) throw new Error(`reference: patch position ${patch.position} out of range`);
    if (patch.vector.length !== dModel) throw new Error(`reference: patch vector has ${patch.vector.length} elements, expected ${dModel}`);
  }
  const applyPatch = (layer: number, h: Float64Array[]) => {
    if (patch && patch.layer === layer) h[patch.position] = Float64Array.from(patch.vector);
  };

  const wte = weight(weights, 'transformer.wte.weight', dVocab * dModel);
  const embeddings: Float64Array[] = tokens.map((t) => {
    if (!(Number.isInteger(t) && t >= 0 && t < dVocab)) throw new Error(`reference: token ${t} out of range`);
    return wte.slice(t * dModel, (t + 1) * dModel);
  });
  applyPatch(-1, embeddings);

  const residPost: Float64Array[][] = [];
  let h = embeddings;
  for (let l = 0; l < nLayers; l++) {
    h = block(config, weights, l, h);
    applyPatch(l, h);
    residPost.push(h);
  }
  const logits = h.map((hp) => referenceLogitLens(config, weights, hp));
  return { embeddings, residPost, logits };
}
