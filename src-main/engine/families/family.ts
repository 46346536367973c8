import type { FamilyName, ModelConfig, RopeScaling } from '../model-config.ts';
import { decodeBf16, decodeHalf, encodeBf16, encodeHalf } from '../dtype.ts';
import { int, invalid, positive, type RawConfig, tokenId, unsupported } from './raw.ts';

/**
 * The parameters of one nn.Linear (or GPT-2's Conv1D, `transposed`: stored [in, out]) or one
 * norm, by checkpoint key.
 */
export interface Params {
  readonly weight: string;
  readonly bias?: string;
  readonly transposed?: true;
}

/** A LayerNorm has a bias; an RMSNorm has none. */
export type NormParams = Params;

/**
 * One projection giving q, k and v side by side. `perHead` (NeoX's query_key_value): the output
 * is [H, 3, dh], each head's q, k, v together; `blocks` (GPT-2's c_attn): [3, H, dh], all of q, then k, then v.
 */
export interface FusedQkv extends Params {
  readonly layout: 'perHead' | 'blocks';
}

/**
 * One block's checkpoint keys, grouped the way the block uses them. Keys a family lacks are
 * absent: ln2 where the MLP reads ln1's output too (GPT-J), q/k/v where one fused qkv projects
 * all three, gate where the MLP is not gated (gated: fcIn is up_proj, fcOut down_proj).
 */
export interface BlockWeights {
  /** The norm before attention (ln_1, input_layernorm). */
  readonly ln1: NormParams;
  /** The norm before the MLP (ln_2, post_attention_layernorm in Llama and NeoX, pre_feedforward_layernorm in Gemma 2). */
  readonly ln2?: NormParams;
  /** Gemma 2's norms on attention's and the MLP's outputs (post_attention_layernorm, post_feedforward_layernorm). */
  readonly lnAttnOut?: NormParams;
  readonly lnMlpOut?: NormParams;
  readonly q?: Params;
  readonly k?: Params;
  readonly v?: Params;
  readonly qkv?: FusedQkv;
  readonly out: Params;
  readonly gate?: Params;
  readonly fcIn: Params;
  readonly fcOut: Params;
}

/** The keys outside the blocks. lmHead is wte's own keys where the head is tied. */
export interface TopWeights {
  readonly wte: Params;
  /** GPT-2's learned positions [nCtx, d]. */
  readonly wpe?: Params;
  readonly lnF: NormParams;
  readonly lmHead: Params;
}

/**
 * What makes a family: how its config.json reads into a ModelConfig (the sizes and the
 * description of its block) and what its checkpoint calls each weight. The graphs are the same
 * for every family (graph/); adding a family is one of these and its tests.
 */
export interface FamilyDescription {
  readonly family: FamilyName;
  /** config.json model_type values read by this description. */
  readonly modelTypes: readonly string[];
  /** Weight key prefixes seen in published checkpoints, the usual one first (checkpoint.ts picks the one present). */
  readonly weightPrefixes: readonly string[];
  /** The untied head's keys seen in published checkpoints, likewise. */
  readonly headKeys: readonly string[];
  parse(raw: RawConfig): ModelConfig;
  top(c: ModelConfig): TopWeights;
  block(c: ModelConfig, l: number): BlockWeights;
}

/** The head size, checked against the width when config.json does not give one. */
export function headSize(raw: RawConfig, o: { dModel: number; nHeads: number; key?: string; fallback?: number }): number {
  if (o.key && raw.r[o.key] != null) return int(raw, o.key);
  if (o.fallback !== undefined) return o.fallback;
  if (o.dModel % o.nHeads !== 0) throw invalid(raw, `the width (${o.dModel}) is not divisible by the number of heads (${o.nHeads})`);
  return o.dModel / o.nHeads;
}

/** Key/value heads must divide the query heads evenly: each is shared by nHeads / nKeyValueHeads of them. */
export function kvHeads(raw: RawConfig, nHeads: number, fallback = nHeads): number {
  const n = int(raw, 'num_key_value_heads', fallback);
  if (nHeads % n !== 0) throw invalid(raw, `num_key_value_heads (${n}) does not divide the number of attention heads (${nHeads})`);
  return n;
}

export function checkRotaryDim(raw: RawConfig, rotaryDim: number, dHead: number): number {
  if (rotaryDim > dHead || rotaryDim % 2 !== 0 || rotaryDim <= 0) throw invalid(raw, `the rotary dims (${rotaryDim}) must be even, positive and at most the head size (${dHead})`);
  return rotaryDim;
}

/**
 * The rotary base and scaling: config.json's rope_theta / rope_scaling as published, or the
 * rope_parameters object that newer transformers versions write instead. Scalings other than
 * Llama 3's and linear change the frequencies in ways not implemented here, so they are refused.
 */
export function ropeOf(raw: RawConfig, thetaKey = 'rope_theta'): { rotaryBase: number; ropeScaling: RopeScaling | null } {
  const params = raw.r.rope_parameters as Record<string, unknown> | undefined;
  const scaling = (raw.r.rope_scaling ?? params ?? null) as Record<string, unknown> | null;
  const rotaryBase = positive(raw, thetaKey, (params?.rope_theta as number | undefined) ?? 10000);
  const type = scaling?.rope_type ?? scaling?.type ?? 'default';
  if (type === 'default') return { rotaryBase, ropeScaling: null };
  const sub: RawConfig = { r: scaling ?? {}, file: raw.file };
  if (type === 'linear') return { rotaryBase, ropeScaling: { ropeType: 'linear', factor: positive(sub, 'factor') } };
  if (type === 'llama3') {
    const lowFreqFactor = positive(sub, 'low_freq_factor');
    const highFreqFactor = positive(sub, 'high_freq_factor');
    if (!(highFreqFactor > lowFreqFactor)) throw invalid(raw, 'rope_scaling: high_freq_factor must be above low_freq_factor');
    return {
      rotaryBase,
      ropeScaling: { ropeType: 'llama3', factor: positive(sub, 'factor'), lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: int(sub, 'original_max_position_embeddings') },
    };
  }
  throw unsupported(raw, `rope_scaling type ${JSON.stringify(type)} is not supported (supported: linear, llama3)`);
}

/** Which layers use the sliding window: config.json's layer_types where given, else the family's rule. */
export function attnTypesOf(raw: RawConfig, nLayers: number, local: (l: number) => boolean): ('global' | 'local')[] {
  const given = raw.r.layer_types;
  if (given == null) return Array.from({ length: nLayers }, (_, l) => (local(l) ? 'local' : 'global'));
  if (!Array.isArray(given) || given.length !== nLayers) throw invalid(raw, `"layer_types" must list one type per layer (${nLayers})`);
  return given.map((t) => {
    if (t === 'full_attention') return 'global';
    if (t === 'sliding_attention') return 'local';
    throw unsupported(raw, `layer type ${JSON.stringify(t)} is not supported (supported: full_attention, sliding_attention)`);
  });
}

/** Prefixes `key` with `c.weightPrefix`. */
export function keyIn(c: ModelConfig, key: string): string {
  return `${c.weightPrefix}${key}`;
}

/** The keys of one linear (or Conv1D) `name` under prefix `p`: its weight, and its bias where it has one. */
export function linearKeys(p: string, name: string, bias: boolean, transposed = false): Params {
  return { weight: `${p}${name}.weight`, ...(bias ? { bias: `${p}${name}.bias` } : {}), ...(transposed ? { transposed: true as const } : {}) };
}

/**
 * A constant as the checkpoint's own dtype holds it (config.json's torch_dtype, or dtype from
 * transformers 5 on): Hugging Face computes some constants as tensors of the model's dtype, such as
 * Gemma's √d embedding normaliser (bf16: √3584 = 59.87 becomes 59.75).
 */
export function inModelDtype(raw: RawConfig, x: number): number {
  const dtype = raw.r.dtype ?? raw.r.torch_dtype;
  if (dtype === 'bfloat16') return decodeBf16(encodeBf16(x));
  if (dtype === 'float16') return decodeHalf(encodeHalf(x));
  return Math.fround(x);
}

/**
 * The sizes GPT-2-style configs (gpt2, gptj) name alike: n_embd, n_head, n_layer, n_inner,
 * n_positions, vocab_size, layer_norm_epsilon and bos_token_id; every head is a key/value head.
 */
export function gpt2StyleSizes(raw: RawConfig, bosFallback: number) {
  const dModel = int(raw, 'n_embd');
  const nHeads = int(raw, 'n_head');
  return {
    nLayers: int(raw, 'n_layer'),
    dModel,
    nHeads,
    nKeyValueHeads: nHeads,
    dHead: headSize(raw, { dModel, nHeads }),
    dMlp: int(raw, 'n_inner', 4 * dModel),
    nCtx: int(raw, 'n_positions'),
    dVocab: int(raw, 'vocab_size'),
    layerNormEps: positive(raw, 'layer_norm_epsilon', 1e-5),
    bosTokenId: tokenId(raw, 'bos_token_id', bosFallback),
  };
}

/** Llama-style embedding, final RMSNorm and head keys (llama, qwen2, mistral, gemma2): the head may be tied to the embedding. */
export function llamaStyleTop(c: ModelConfig): TopWeights {
  return {
    wte: { weight: keyIn(c, 'embed_tokens.weight') },
    lnF: { weight: keyIn(c, 'norm.weight') },
    lmHead: c.tiedEmbeddings ? { weight: keyIn(c, 'embed_tokens.weight') } : { weight: `${c.headKey}.weight` },
  };
}
