/**
 * Reads a Hugging Face config.json for one of the model families the float64 reference knows, the
 * way transformers 5.x's configuration classes do: the hub's field names (`rope_theta`, `rope_scaling`,
 * `rotary_pct`, `n_embd`, …) and HF's default for every field a config may leave out. Test-side only;
 * the engine has its own reader, and the two are compared through the forward passes.
 */
import { decodeBf16, decodeHalf, encodeBf16, encodeHalf } from '../../src-main/engine/dtype.ts';

export const FAMILIES = ['llama', 'mistral', 'qwen2', 'gemma2', 'gpt_neox', 'gpt2'] as const;
export type Family = (typeof FAMILIES)[number];

export type HfConfig = Readonly<Record<string, unknown>>;

export type NormKind =
  | 'rms' // x / rms(x) * w (Llama, Mistral, Qwen2)
  | 'rms_one_plus' // x / rms(x) * (1 + w) (Gemma 2)
  | 'layer'; // (x - mean) / std * w + b (GPT-NeoX, GPT-2)

export type Activation = 'silu' | 'gelu_tanh' | 'gelu_erf';

/** Everything the forward needs, TransformerLens-style names; per-layer facts as arrays over layers. */
export interface FamilyDims {
  family: Family;
  nLayers: number;
  dModel: number;
  nHeads: number;
  /** Key/value heads (grouped-query attention when < nHeads); query head h reads kv head floor(h / (nHeads / nKvHeads)). */
  nKvHeads: number;
  /** May differ from dModel / nHeads (Mistral Nemo, Gemma 2). */
  dHead: number;
  dMlp: number;
  dVocab: number;
  /** Learned positions (GPT-2 only), else null. */
  nPositions: number | null;
  norm: NormKind;
  eps: number;
  act: Activation;
  /** Head reads the embedding matrix (no lm_head / embed_out in the file). */
  tied: boolean;
  /** Rotary inverse frequencies, one per rotated pair ("rotate half" layout); null for GPT-2. */
  invFreq: Float64Array | null;
  /** Multiplies q·k before any soft-cap. */
  attnScale: number;
  attnSoftcap: number | null;
  finalSoftcap: number | null;
  /** Per layer: the sliding window (a position sees itself and the window - 1 before it), or null. */
  windows: (number | null)[];
  /**
   * Gemma 2 multiplies the embeddings by √dModel as a tensor of the model's dtype, so a bf16 model
   * uses bf16(√d) (59.75 for 3584); taken from the checkpoint's dtype here. (HF's float64 run of
   * a bf16 checkpoint would use the unrounded value; with the fixtures' d = 64 both are exactly 8.)
   */
  embedScale: number;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  /** GPT-NeoX only: attention and MLP both read the block input. */
  parallelResidual: boolean;
}

const num = (c: HfConfig, key: string, fallback?: number): number => {
  const v = c[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`reference: config.${key} must be a number (got ${JSON.stringify(c[key])})`);
  return v;
};
const optNum = (c: HfConfig, key: string, fallback: number | null): number | null => {
  const v = key in c ? c[key] : fallback;
  return v === null || v === undefined ? null : num({ [key]: v }, key);
};
const bool = (c: HfConfig, key: string, fallback: boolean): boolean => (typeof c[key] === 'boolean' ? (c[key] as boolean) : fallback);

/** torch's dtype names as config.json writes them (`torch_dtype` before transformers 5, `dtype` after). */
export function configDtype(c: HfConfig): 'float32' | 'float16' | 'bfloat16' {
  const d = c.dtype ?? c.torch_dtype ?? 'float32';
  if (d !== 'float32' && d !== 'float16' && d !== 'bfloat16') throw new Error(`reference: unsupported dtype ${String(d)}`);
  return d;
}

/** Rounds to float32 / float16 / bfloat16, for constants a model computes in its own dtype. */
export function roundToDtype(x: number, dtype: 'float32' | 'float16' | 'bfloat16'): number {
  if (dtype === 'float32') return Math.fround(x);
  return dtype === 'float16' ? decodeHalf(encodeHalf(x)) : decodeBf16(encodeBf16(x));
}

/** θ_i = base^(-2i/dim) for i < dim/2: the plain RoPE frequencies. */
export function ropeInvFreq(base: number, dim: number): Float64Array {
  return Float64Array.from({ length: dim / 2 }, (_, i) => 1 / base ** ((2 * i) / dim));
}

/**
 * Llama 3.1's `rope_type: "llama3"` (modeling_rope_utils._compute_llama3_parameters): wavelengths
 * shorter than original/high_freq_factor keep their frequency, longer than original/low_freq_factor
 * are divided by `factor`, and those between are interpolated.
 */
export function llama3InvFreq(invFreq: Float64Array, s: Record<string, unknown>): Float64Array {
  const factor = num(s, 'factor');
  const low = num(s, 'low_freq_factor');
  const high = num(s, 'high_freq_factor');
  const old = num(s, 'original_max_position_embeddings');
  return invFreq.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < old / high) return f;
    if (wavelen > old / low) return f / factor;
    const smooth = (old / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** RoPE frequencies from `rope_theta` + `rope_scaling` (hub form) or transformers 5's `rope_parameters`. */
function ropeFromConfig(c: HfConfig, dim: number, defaultTheta: number): Float64Array {
  const params = (c.rope_parameters ?? c.rope_scaling ?? null) as Record<string, unknown> | null;
  const theta = num(c, 'rope_theta', typeof params?.rope_theta === 'number' ? params.rope_theta : defaultTheta);
  const base = ropeInvFreq(theta, dim);
  const type = params ? (params.rope_type ?? params.type ?? 'default') : 'default';
  if (type === 'default') return base;
  if (type === 'llama3') return llama3InvFreq(base, params!);
  throw new Error(`reference: rope type ${String(type)} is not implemented`);
}

/** Resolves `c` the way HF's config class for `family` would, defaults included. */
export function resolveFamily(family: Family, c: HfConfig): FamilyDims {
  if (family === 'gpt2') {
    const dModel = num(c, 'n_embd', 768);
    const nHeads = num(c, 'n_head', 12);
    if (c.scale_attn_by_inverse_layer_idx || c.reorder_and_upcast_attn) throw new Error('reference: GPT-2 attention variants are not implemented');
    return {
      family, nLayers: num(c, 'n_layer', 12), dModel, nHeads, nKvHeads: nHeads, dHead: dModel / nHeads,
      dMlp: optNum(c, 'n_inner', null) ?? 4 * dModel, dVocab: num(c, 'vocab_size', 50257), nPositions: num(c, 'n_positions', 1024),
      norm: 'layer', eps: num(c, 'layer_norm_epsilon', 1e-5), act: activation(c.activation_function ?? 'gelu_new'),
      tied: bool(c, 'tie_word_embeddings', true), invFreq: null,
      attnScale: bool(c, 'scale_attn_weights', true) ? 1 / Math.sqrt(dModel / nHeads) : 1,
      attnSoftcap: null, finalSoftcap: null, windows: Array(num(c, 'n_layer', 12)).fill(null), embedScale: 1,
      qkvBias: true, oBias: true, mlpBias: true, parallelResidual: false,
    };
  }
  const nLayers = num(c, 'num_hidden_layers');
  const dModel = num(c, 'hidden_size');
  const nHeads = num(c, 'num_attention_heads');
  if (family === 'gpt_neox') {
    const dHead = dModel / nHeads;
    // GPT-NeoX names its rope fields its own way; transformers 5 maps them to rope_parameters.
    const params = (c.rope_parameters ?? {}) as Record<string, unknown>;
    const pct = num(c, 'rotary_pct', typeof params.partial_rotary_factor === 'number' ? params.partial_rotary_factor : 0.25);
    const base = num(c, 'rotary_emb_base', typeof params.rope_theta === 'number' ? params.rope_theta : 10000);
    const attnBias = bool(c, 'attention_bias', true);
    return {
      family, nLayers, dModel, nHeads, nKvHeads: nHeads, dHead, dMlp: num(c, 'intermediate_size'), dVocab: num(c, 'vocab_size'),
      nPositions: null, norm: 'layer', eps: num(c, 'layer_norm_eps', 1e-5), act: activation(c.hidden_act ?? 'gelu'),
      tied: bool(c, 'tie_word_embeddings', false), invFreq: ropeInvFreq(base, Math.trunc(dHead * pct)), attnScale: 1 / Math.sqrt(dHead),
      attnSoftcap: null, finalSoftcap: null, windows: Array(nLayers).fill(null), embedScale: 1,
      qkvBias: attnBias, oBias: attnBias, mlpBias: true, parallelResidual: bool(c, 'use_parallel_residual', true),
    };
  }
  const gemma = family === 'gemma2';
  const dHead = gemma ? num(c, 'head_dim', 256) : optNum(c, 'head_dim', null) ?? dModel / nHeads;
  const attnBias = family !== 'mistral' && bool(c, 'attention_bias', false);
  return {
    family, nLayers, dModel, nHeads, nKvHeads: num(c, 'num_key_value_heads', gemma ? 4 : family === 'mistral' ? 8 : nHeads), dHead,
    dMlp: num(c, 'intermediate_size'), dVocab: num(c, 'vocab_size'), nPositions: null,
    norm: gemma ? 'rms_one_plus' : 'rms', eps: num(c, 'rms_norm_eps', 1e-6),
    act: activation(gemma ? (c.hidden_activation ?? c.hidden_act ?? 'gelu_pytorch_tanh') : (c.hidden_act ?? 'silu')),
    tied: bool(c, 'tie_word_embeddings', gemma), invFreq: ropeFromConfig(c, dHead, 10000),
    attnScale: 1 / Math.sqrt(gemma ? num(c, 'query_pre_attn_scalar', 256) : dHead),
    attnSoftcap: gemma ? optNum(c, 'attn_logit_softcapping', 50) : null,
    finalSoftcap: gemma ? optNum(c, 'final_logit_softcapping', 30) : null,
    windows: layerWindows(family, c, nLayers),
    embedScale: gemma ? roundToDtype(Math.sqrt(dModel), configDtype(c)) : 1,
    // Qwen2 always has q/k/v biases and never an o_proj bias, whatever the config says.
    qkvBias: family === 'qwen2' || attnBias, oBias: family !== 'qwen2' && attnBias,
    mlpBias: family === 'llama' && bool(c, 'mlp_bias', false), parallelResidual: false,
  };
}

/** Which layers slide, per the family's config class (`layer_types` when the config names them). */
function layerWindows(family: Family, c: HfConfig, nLayers: number): (number | null)[] {
  const window = optNum(c, 'sliding_window', family === 'llama' ? null : 4096);
  const types = c.layer_types as string[] | undefined;
  return Array.from({ length: nLayers }, (_, l) => {
    if (family === 'llama') return null;
    if (family === 'mistral') return window; // every layer slides when sliding_window is set
    if (family === 'qwen2') {
      if (!bool(c, 'use_sliding_window', false)) return null;
      return (types ? types[l] === 'sliding_attention' : l >= num(c, 'max_window_layers', 28)) ? window : null;
    }
    // Gemma 2: layers 0, 2, 4, … slide unless layer_types says otherwise.
    return (types ? types[l] === 'sliding_attention' : l % 2 === 0) ? window : null;
  });
}

function activation(name: unknown): Activation {
  if (name === 'silu' || name === 'swish') return 'silu';
  if (name === 'gelu_new' || name === 'gelu_pytorch_tanh' || name === 'gelu_fast') return 'gelu_tanh';
  if (name === 'gelu') return 'gelu_erf';
  throw new Error(`reference: activation ${String(name)} is not implemented`);
}
