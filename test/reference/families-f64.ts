/**
 * An independent float64 forward for the families beyond GPT-J (Llama, Mistral, Qwen2, Gemma 2,
 * GPT-NeoX, GPT-2), written straight from Hugging Face's modelling code (`LlamaDecoderLayer`,
 * `Gemma2DecoderLayer`, `GPTNeoXLayer`, `GPT2Block`, …) and used only by tests. It reads the HF
 * config.json and the weights by their HF key names; same API shape as gptj-f64.ts.
 */
import { linear, weight, type ReferencePatch, type ReferenceResult, type Weights } from './gptj-f64.ts';
import { resolveFamily, type Family, type FamilyDims, type HfConfig } from './families-config.ts';
import { activate, causalAttention, conv1d, heads, logSoftmax, norm, rotateHalf, softcap } from './families-math.ts';

export type { ReferencePatch, ReferenceResult, Weights };

/** A module's weight and (when it has one) bias, checked against the expected sizes. */
function param(weights: Weights, name: string, size: number, biasSize: number | null) {
  return { w: weight(weights, `${name}.weight`, size), b: biasSize === null ? undefined : weight(weights, `${name}.bias`, biasSize) };
}

/** A norm module of the family's kind (LayerNorm has a bias, RMSNorm does not). */
function normAt(d: FamilyDims, weights: Weights, name: string): (x: Float64Array) => Float64Array {
  const { w, b } = param(weights, name, d.dModel, d.norm === 'layer' ? d.dModel : null);
  return (x) => norm(d.norm, x, w, b ?? null, d.eps);
}

/** embed → (block, patch) per layer → final norm + head; resid_post is each block's output before the final norm. */
export function referenceForward(opts: {
  family: Family;
  config: HfConfig;
  weights: Weights;
  tokens: number[];
  patch?: ReferencePatch;
}): ReferenceResult {
  const { family, config, weights, tokens, patch } = opts;
  const d = resolveFamily(family, config);
  if (tokens.length === 0) throw new Error('reference: no tokens');
  if (patch) {
    if (!(Number.isInteger(patch.layer) && patch.layer >= -1 && patch.layer < d.nLayers)) throw new Error(`reference: patch layer ${patch.layer} out of range`);
    if (!(Number.isInteger(patch.position) && patch.position >= 0 && patch.position < tokens.length)) throw new Error(`reference: patch position ${patch.position} out of range`);
    if (patch.vector.length !== d.dModel) throw new Error(`reference: patch vector has ${patch.vector.length} elements, expected ${d.dModel}`);
  }
  const applyPatch = (layer: number, h: Float64Array[]) => {
    if (patch && patch.layer === layer) h[patch.position] = Float64Array.from(patch.vector);
  };

  const embeddings = embed(d, weights, tokens);
  applyPatch(-1, embeddings);
  const residPost: Float64Array[][] = [];
  let h = embeddings;
  for (let l = 0; l < d.nLayers; l++) {
    h = d.family === 'gpt2' ? gpt2Block(d, weights, l, h) : d.family === 'gpt_neox' ? neoxBlock(d, weights, l, h) : rmsDecoderBlock(d, weights, l, h);
    applyPatch(l, h);
    residPost.push(h);
  }
  const head = headOf(d, weights);
  return { embeddings, residPost, logits: h.map(head) };
}

/** Final norm → head → final soft-cap: the model's logits from one residual vector. */
export function referenceHead(family: Family, config: HfConfig, weights: Weights, h: Float64Array): Float64Array {
  return headOf(resolveFamily(family, config), weights)(h);
}

/** The logit lens on one residual vector: log-softmax of referenceHead (log-probabilities, not raw logits). */
export function referenceLogitLens(family: Family, config: HfConfig, weights: Weights, h: Float64Array): Float64Array {
  return logSoftmax(referenceHead(family, config, weights, h));
}

// ---- embeddings and head

const EMBED: Record<Family, string> = {
  llama: 'model.embed_tokens', mistral: 'model.embed_tokens', qwen2: 'model.embed_tokens', gemma2: 'model.embed_tokens',
  gpt_neox: 'gpt_neox.embed_in', gpt2: 'wte',
};
const FINAL_NORM: Record<Family, string> = {
  llama: 'model.norm', mistral: 'model.norm', qwen2: 'model.norm', gemma2: 'model.norm', gpt_neox: 'gpt_neox.final_layer_norm', gpt2: 'ln_f',
};

/** resid_pre of block 0: the token's row (× √d for Gemma 2), plus GPT-2's learned position row. */
function embed(d: FamilyDims, weights: Weights, tokens: number[]): Float64Array[] {
  const { dModel: D } = d;
  const table = weight(weights, `${EMBED[d.family]}.weight`, d.dVocab * D);
  const wpe = d.nPositions === null ? null : weight(weights, 'wpe.weight', d.nPositions * D);
  if (wpe && tokens.length > d.nPositions!) throw new Error(`reference: ${tokens.length} tokens exceed n_positions ${d.nPositions}`);
  return tokens.map((t, p) => {
    if (!(Number.isInteger(t) && t >= 0 && t < d.dVocab)) throw new Error(`reference: token ${t} out of range`);
    const x = table.slice(t * D, (t + 1) * D).map((v) => v * d.embedScale);
    if (wpe) for (let i = 0; i < D; i++) x[i] += wpe[p * D + i];
    return x;
  });
}

function headOf(d: FamilyDims, weights: Weights): (h: Float64Array) => Float64Array {
  const finalNorm = normAt(d, weights, FINAL_NORM[d.family]);
  const untied = d.family === 'gpt_neox' ? 'embed_out' : 'lm_head';
  // A tied head reads the embedding matrix as stored (Gemma's √d scales only the input side).
  const w = weight(weights, `${d.tied ? EMBED[d.family] : untied}.weight`, d.dVocab * d.dModel);
  return (h) => linear(w, finalNorm(h), d.dVocab).map((v) => softcap(v, d.finalSoftcap));
}

// ---- blocks

/**
 * Llama / Mistral / Qwen2 (LlamaDecoderLayer):
 *   mid = h + attn(input_layernorm(h));  out = mid + mlp(post_attention_layernorm(mid))
 * Gemma 2 (Gemma2DecoderLayer) norms each sublayer's output too, and names its MLP norms apart:
 *   mid = h + post_attention_layernorm(attn(input_layernorm(h)))
 *   out = mid + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(mid)))
 */
function rmsDecoderBlock(d: FamilyDims, weights: Weights, l: number, h: Float64Array[]): Float64Array[] {
  const p = `model.layers.${l}`;
  const gemma = d.family === 'gemma2';
  const identity = (x: Float64Array) => x;
  const attnOutNorm = gemma ? normAt(d, weights, `${p}.post_attention_layernorm`) : identity;
  const mlpInNorm = normAt(d, weights, gemma ? `${p}.pre_feedforward_layernorm` : `${p}.post_attention_layernorm`);
  const mlpOutNorm = gemma ? normAt(d, weights, `${p}.post_feedforward_layernorm`) : identity;

  const x = h.map(normAt(d, weights, `${p}.input_layernorm`));
  const attn = rmsDecoderAttention(d, weights, l, x).map(attnOutNorm);
  const mid = h.map((hp, t) => hp.map((v, i) => v + attn[t][i]));
  return mid.map((m) => {
    const mlp = mlpOutNorm(gatedMlp(d, weights, `${p}.mlp`, mlpInNorm(m)));
    return m.map((v, i) => v + mlp[i]);
  });
}

/** q/k/v projections (GQA: fewer k/v heads), rotate-half RoPE on q and k, attention, o_proj. */
function rmsDecoderAttention(d: FamilyDims, weights: Weights, l: number, x: Float64Array[]): Float64Array[] {
  const { dModel: D, nHeads: H, nKvHeads: KV, dHead: dh } = d;
  const p = `model.layers.${l}.self_attn`;
  const qProj = param(weights, `${p}.q_proj`, H * dh * D, d.qkvBias ? H * dh : null);
  const kProj = param(weights, `${p}.k_proj`, KV * dh * D, d.qkvBias ? KV * dh : null);
  const vProj = param(weights, `${p}.v_proj`, KV * dh * D, d.qkvBias ? KV * dh : null);
  const oProj = param(weights, `${p}.o_proj`, D * H * dh, d.oBias ? D : null);
  const rope = (hs: Float64Array[], t: number) => hs.map((head) => rotateHalf(head, t, d.invFreq!));
  const q = x.map((xt, t) => rope(heads(linear(qProj.w, xt, H * dh, qProj.b), H, dh), t)); // [T][H] -> dh
  const k = x.map((xt, t) => rope(heads(linear(kProj.w, xt, KV * dh, kProj.b), KV, dh), t)); // [T][KV] -> dh
  const v = x.map((xt) => heads(linear(vProj.w, xt, KV * dh, vProj.b), KV, dh)); // [T][KV] -> dh
  const z = causalAttention({ nHeads: H, nKvHeads: KV, dHead: dh, scale: d.attnScale, softcap: d.attnSoftcap, window: d.windows[l] }, q, k, v);
  return z.map((zt) => linear(oProj.w, zt, D, oProj.b)); // [T] -> D
}

/** SwiGLU / GeGLU: down_proj(act(gate_proj(x)) * up_proj(x)). */
function gatedMlp(d: FamilyDims, weights: Weights, p: string, x: Float64Array): Float64Array {
  const { dModel: D, dMlp: I } = d;
  const gate = param(weights, `${p}.gate_proj`, I * D, d.mlpBias ? I : null);
  const up = param(weights, `${p}.up_proj`, I * D, d.mlpBias ? I : null);
  const down = param(weights, `${p}.down_proj`, D * I, d.mlpBias ? D : null);
  const u = linear(up.w, x, I, up.b);
  const hidden = linear(gate.w, x, I, gate.b).map((g, i) => activate(d.act, g) * u[i]);
  return linear(down.w, hidden, D, down.b);
}

/**
 * GPT-NeoX (GPTNeoXLayer). Parallel residual (Pythia): out = h + attn(input_layernorm(h)) +
 * mlp(post_attention_layernorm(h)), so there is no resid_mid. Sequential: mid = h + attn(input_layernorm(h)),
 * out = mid + mlp(post_attention_layernorm(mid)).
 */
function neoxBlock(d: FamilyDims, weights: Weights, l: number, h: Float64Array[]): Float64Array[] {
  const { dModel: D, nHeads: H, dHead: dh, dMlp: I } = d;
  const p = `gpt_neox.layers.${l}`;
  const qkv = param(weights, `${p}.attention.query_key_value`, 3 * D * D, d.qkvBias ? 3 * D : null);
  const dense = param(weights, `${p}.attention.dense`, D * D, d.oBias ? D : null);
  const fcIn = param(weights, `${p}.mlp.dense_h_to_4h`, I * D, I);
  const fcOut = param(weights, `${p}.mlp.dense_4h_to_h`, D * I, D);
  const postNorm = normAt(d, weights, `${p}.post_attention_layernorm`);
  const mlp = (x: Float64Array) => linear(fcOut.w, linear(fcIn.w, x, I, fcIn.b).map((v) => activate(d.act, v)), D, fcOut.b);

  const x = h.map(normAt(d, weights, `${p}.input_layernorm`));
  // The fused projection's 3·D outputs are laid out [H, 3, dh]: head n's q, k, v sit side by side.
  const fused = x.map((xt) => linear(qkv.w, xt, 3 * D, qkv.b));
  const rope = (hs: Float64Array[], t: number) => hs.map((head) => rotateHalf(head, t, d.invFreq!));
  const q = fused.map((f, t) => rope(heads(f, H, dh, 0, 3 * dh), t));
  const k = fused.map((f, t) => rope(heads(f, H, dh, dh, 3 * dh), t));
  const v = fused.map((f) => heads(f, H, dh, 2 * dh, 3 * dh));
  const z = causalAttention({ nHeads: H, nKvHeads: H, dHead: dh, scale: d.attnScale, softcap: null, window: null }, q, k, v);
  const attn = z.map((zt) => linear(dense.w, zt, D, dense.b));
  return h.map((ht, t) => {
    if (d.parallelResidual) {
      const m = mlp(postNorm(ht));
      return ht.map((v, i) => v + attn[t][i] + m[i]);
    }
    const mid = ht.map((v, i) => v + attn[t][i]);
    const m = mlp(postNorm(mid));
    return mid.map((v, i) => v + m[i]);
  });
}

/** GPT-2 (GPT2Block): mid = h + attn(ln_1(h)); out = mid + mlp(ln_2(mid)), Conv1D weights [in, out]. */
function gpt2Block(d: FamilyDims, weights: Weights, l: number, h: Float64Array[]): Float64Array[] {
  const { dModel: D, nHeads: H, dHead: dh, dMlp: I } = d;
  const p = `h.${l}`;
  const cAttn = param(weights, `${p}.attn.c_attn`, D * 3 * D, 3 * D);
  const cProj = param(weights, `${p}.attn.c_proj`, D * D, D);
  const cFc = param(weights, `${p}.mlp.c_fc`, D * I, I);
  const mlpProj = param(weights, `${p}.mlp.c_proj`, I * D, D);
  const ln2 = normAt(d, weights, `${p}.ln_2`);

  const x = h.map(normAt(d, weights, `${p}.ln_1`));
  // c_attn's 3·D outputs are q | k | v, each D wide with heads side by side.
  const fused = x.map((xt) => conv1d(cAttn.w, xt, 3 * D, cAttn.b!));
  const q = fused.map((f) => heads(f, H, dh, 0));
  const k = fused.map((f) => heads(f, H, dh, D));
  const v = fused.map((f) => heads(f, H, dh, 2 * D));
  const z = causalAttention({ nHeads: H, nKvHeads: H, dHead: dh, scale: d.attnScale, softcap: null, window: null }, q, k, v);
  return h.map((ht, t) => {
    const attn = conv1d(cProj.w, z[t], D, cProj.b!);
    const mid = ht.map((v, i) => v + attn[i]);
    const hidden = conv1d(cFc.w, ln2(mid), I, cFc.b!).map((v) => activate(d.act, v));
    const m = conv1d(mlpProj.w, hidden, D, mlpProj.b!);
    return mid.map((v, i) => v + m[i]);
  });
}
