import type { ModelConfig } from '../model-config.ts';
import { attnTypesOf, checkRotaryDim, type FamilyDescription, llamaStyleTop, inModelDtype, keyIn, kvHeads, linearKeys, ropeOf } from './family.ts';
import { bool, int, oneOf, positive, positiveOrNull, tokenId } from './raw.ts';

/**
 * Gemma 2: Llama's attention and gated MLP (GeGLU), with RMSNorm scaled by (1 + w), embeddings
 * scaled by √d (rounded to the checkpoint's dtype, as Hugging Face computes it), a norm before and after both attention and the MLP, query_pre_attn_scalar in place
 * of the head size in the score scale, tanh soft-capping of attention scores and of the final
 * logits, and every other layer (the even ones) attending through a sliding window.
 * head_dim and query_pre_attn_scalar default to 256, not to hidden/heads.
 */
export const gemma2: FamilyDescription = {
  family: 'gemma2',
  modelTypes: ['gemma2'],
  weightPrefixes: ['model.'],
  headKeys: ['lm_head'],
  parse(raw) {
    const dModel = int(raw, 'hidden_size');
    const nHeads = int(raw, 'num_attention_heads');
    const nLayers = int(raw, 'num_hidden_layers');
    const dHead = int(raw, 'head_dim', 256);
    const windowSize = positiveOrNull(raw, 'sliding_window', 4096);
    return {
      family: 'gemma2',
      modelType: 'gemma2',
      nLayers,
      dModel,
      nHeads,
      nKeyValueHeads: kvHeads(raw, nHeads, 4),
      dHead,
      dMlp: int(raw, 'intermediate_size'),
      nCtx: int(raw, 'max_position_embeddings'),
      rotaryDim: checkRotaryDim(raw, dHead, dHead),
      dVocab: int(raw, 'vocab_size'),
      layerNormEps: positive(raw, 'rms_norm_eps', 1e-6),
      bosTokenId: tokenId(raw, 'bos_token_id', 2),
      normalizationType: 'RMS',
      normWeightPlusOne: true,
      positionalEmbeddingType: 'rotary',
      rotaryAdjacentPairs: false,
      ...ropeOf(raw),
      attnScale: positive(raw, 'query_pre_attn_scalar', 256) ** -0.5,
      attnScoresSoftCap: positiveOrNull(raw, 'attn_logit_softcapping', 50),
      windowSize,
      attnTypes: attnTypesOf(raw, nLayers, (l) => windowSize !== null && l % 2 === 0),
      gatedMlp: true,
      // Gemma2MLP reads hidden_activation only; the hidden_act that hub configs also carry is unused.
      actFn: oneOf(raw, 'hidden_activation', { gelu_pytorch_tanh: 'gelu_new', gelu_new: 'gelu_new', gelu: 'gelu' }, 'gelu_pytorch_tanh'),
      parallelAttnMlp: false,
      useNormalizationBeforeAndAfter: true,
      embedScale: inModelDtype(raw, Math.sqrt(dModel)),
      outputLogitsSoftCap: positiveOrNull(raw, 'final_logit_softcapping', 30),
      tiedEmbeddings: bool(raw, 'tie_word_embeddings', true),
      weightPrefix: 'model.',
      headKey: 'lm_head',
      qkvBias: bool(raw, 'attention_bias', false),
      attnOutBias: bool(raw, 'attention_bias', false),
      mlpBias: false,
    } satisfies ModelConfig;
  },
  top: llamaStyleTop,
  block(c, l) {
    const p = keyIn(c, `layers.${l}.`);
    return {
      ln1: { weight: `${p}input_layernorm.weight` },
      lnAttnOut: { weight: `${p}post_attention_layernorm.weight` },
      ln2: { weight: `${p}pre_feedforward_layernorm.weight` },
      lnMlpOut: { weight: `${p}post_feedforward_layernorm.weight` },
      q: linearKeys(p, 'self_attn.q_proj', c.qkvBias),
      k: linearKeys(p, 'self_attn.k_proj', c.qkvBias),
      v: linearKeys(p, 'self_attn.v_proj', c.qkvBias),
      out: linearKeys(p, 'self_attn.o_proj', c.attnOutBias),
      gate: linearKeys(p, 'mlp.gate_proj', false),
      fcIn: linearKeys(p, 'mlp.up_proj', false),
      fcOut: linearKeys(p, 'mlp.down_proj', false),
    };
  },
};
