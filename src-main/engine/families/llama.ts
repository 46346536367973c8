import type { ModelConfig } from '../model-config.ts';
import { attnTypesOf, checkRotaryDim, type FamilyDescription, llamaStyleTop, headSize, keyIn, kvHeads, linearKeys, ropeOf } from './family.ts';
import { bool, int, oneOf, positive, type RawConfig, tokenId } from './raw.ts';

/** What differs between the model types that share Llama's block. */
interface Variant {
  readonly bos: number;
  /** num_key_value_heads when config.json leaves it out (Mistral's class default is 8, the others' the head count). */
  readonly kvHeads?: number;
  /** Biases of q, k, v and of o_proj: Llama's attention_bias sets all four; Qwen2 always has q/k/v biases and never o_proj's. */
  readonly biases: (raw: RawConfig) => { qkv: boolean; out: boolean };
  /** Which layers slide (given a window); the window itself, or null. */
  readonly window: (raw: RawConfig) => number | null;
  readonly local: (raw: RawConfig, l: number) => boolean;
}

const VARIANTS: Record<string, Variant> = {
  llama: {
    bos: 1,
    biases: (raw) => ({ qkv: bool(raw, 'attention_bias', false), out: bool(raw, 'attention_bias', false) }),
    window: () => null,
    local: () => false,
  },
  // Mistral's window (v0.1: 4096; null from v0.2 on) covers every layer.
  mistral: {
    bos: 1,
    kvHeads: 8,
    biases: () => ({ qkv: false, out: false }),
    window: (raw) => (raw.r.sliding_window == null ? null : int(raw, 'sliding_window')),
    local: () => true,
  },
  // Qwen2 slides only with use_sliding_window, and then in the layers from max_window_layers up.
  qwen2: {
    bos: 151643,
    biases: () => ({ qkv: true, out: false }),
    window: (raw) => (bool(raw, 'use_sliding_window', false) && raw.r.sliding_window != null ? int(raw, 'sliding_window') : null),
    local: (raw, l) => l >= int(raw, 'max_window_layers', 28),
  },
};

/**
 * Llama and the model types built the same way (Qwen2, Mistral): RMSNorm, rotate-half rotary
 * (rope_theta, Llama 3's rope_scaling), grouped-query attention, a SwiGLU MLP after its own norm,
 * sequential residual, and a head tied or not by tie_word_embeddings.
 */
export const llama: FamilyDescription = {
  family: 'llama',
  modelTypes: Object.keys(VARIANTS),
  weightPrefixes: ['model.'],
  headKeys: ['lm_head'],
  parse(raw) {
    const modelType = raw.r.model_type as string;
    const variant = VARIANTS[modelType];
    const dModel = int(raw, 'hidden_size');
    const nHeads = int(raw, 'num_attention_heads');
    const nLayers = int(raw, 'num_hidden_layers');
    const dHead = headSize(raw, { dModel, nHeads, key: 'head_dim' });
    const windowSize = variant.window(raw);
    const biases = variant.biases(raw);
    return {
      family: 'llama',
      modelType,
      nLayers,
      dModel,
      nHeads,
      nKeyValueHeads: kvHeads(raw, nHeads, variant.kvHeads ?? nHeads),
      dHead,
      dMlp: int(raw, 'intermediate_size'),
      nCtx: int(raw, 'max_position_embeddings'),
      rotaryDim: checkRotaryDim(raw, Math.floor(dHead * positive(raw, 'partial_rotary_factor', 1)), dHead),
      dVocab: int(raw, 'vocab_size'),
      layerNormEps: positive(raw, 'rms_norm_eps', 1e-6),
      // Qwen2 writes bos_token_id null in some configs: its <|endoftext|>, the eos id, stands in.
      bosTokenId: tokenId(raw, raw.r.bos_token_id == null && raw.r.eos_token_id != null ? 'eos_token_id' : 'bos_token_id', variant.bos),
      normalizationType: 'RMS',
      normWeightPlusOne: false,
      positionalEmbeddingType: 'rotary',
      rotaryAdjacentPairs: false,
      ...ropeOf(raw),
      attnScale: 1 / Math.sqrt(dHead),
      attnScoresSoftCap: null,
      windowSize,
      attnTypes: attnTypesOf(raw, nLayers, (l) => windowSize !== null && variant.local(raw, l)),
      gatedMlp: true,
      actFn: oneOf(raw, 'hidden_act', { silu: 'silu', gelu: 'gelu', gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new' }, 'silu'),
      parallelAttnMlp: false,
      useNormalizationBeforeAndAfter: false,
      embedScale: 1,
      outputLogitsSoftCap: null,
      tiedEmbeddings: bool(raw, 'tie_word_embeddings', false),
      weightPrefix: 'model.',
      headKey: 'lm_head',
      qkvBias: biases.qkv,
      attnOutBias: biases.out,
      mlpBias: bool(raw, 'mlp_bias', false),
    } satisfies ModelConfig;
  },
  top: llamaStyleTop,
  block(c, l) {
    const p = keyIn(c, `layers.${l}.`);
    const linear = (name: string, bias: boolean) => linearKeys(p, name, bias);
    return {
      ln1: { weight: `${p}input_layernorm.weight` },
      ln2: { weight: `${p}post_attention_layernorm.weight` },
      q: linear('self_attn.q_proj', c.qkvBias),
      k: linear('self_attn.k_proj', c.qkvBias),
      v: linear('self_attn.v_proj', c.qkvBias),
      out: linear('self_attn.o_proj', c.attnOutBias),
      gate: linear('mlp.gate_proj', c.mlpBias),
      fcIn: linear('mlp.up_proj', c.mlpBias),
      fcOut: linear('mlp.down_proj', c.mlpBias),
    };
  },
};

