import type { ModelConfig } from '../model-config.ts';
import { checkRotaryDim, type FamilyDescription, headSize, keyIn, linearKeys, ropeOf } from './family.ts';
import { bool, int, oneOf, positive, type RawConfig, tokenId } from './raw.ts';

/** rotary_pct (older files) or partial_rotary_factor; 0.25 when absent, as in Hugging Face's GPTNeoXConfig. */
function rotaryFraction(raw: RawConfig): number {
  return positive(raw, raw.r.rotary_pct != null ? 'rotary_pct' : 'partial_rotary_factor', 0.25);
}

/**
 * GPT-NeoX and Pythia: LayerNorm, rotate-half rotary on the first rotary_pct of each head with
 * base rotary_emb_base, one fused query_key_value projection whose rows are grouped per head,
 * the exact (erf) GELU, a parallel residual with its own norm before the MLP (or a sequential
 * one: use_parallel_residual false), and an untied embed_out.
 */
export const gptNeox: FamilyDescription = {
  family: 'gpt_neox',
  modelTypes: ['gpt_neox'],
  weightPrefixes: ['gpt_neox.'],
  headKeys: ['embed_out', 'lm_head'],
  parse(raw) {
    const dModel = int(raw, 'hidden_size');
    const nHeads = int(raw, 'num_attention_heads');
    const dHead = headSize(raw, { dModel, nHeads });
    const theta = raw.r.rotary_emb_base != null ? 'rotary_emb_base' : 'rope_theta';
    return {
      family: 'gpt_neox',
      modelType: 'gpt_neox',
      nLayers: int(raw, 'num_hidden_layers'),
      dModel,
      nHeads,
      nKeyValueHeads: nHeads,
      dHead,
      dMlp: int(raw, 'intermediate_size', 4 * dModel),
      nCtx: int(raw, 'max_position_embeddings'),
      // int(head_size * rotary_pct) in Hugging Face, so 0.25 of 64 is 16.
      rotaryDim: checkRotaryDim(raw, Math.floor(dHead * rotaryFraction(raw)), dHead),
      dVocab: int(raw, 'vocab_size'),
      layerNormEps: positive(raw, 'layer_norm_eps', 1e-5),
      bosTokenId: tokenId(raw, 'bos_token_id', 0),
      normalizationType: 'LN',
      normWeightPlusOne: false,
      positionalEmbeddingType: 'rotary',
      rotaryAdjacentPairs: false,
      ...ropeOf(raw, theta),
      attnScale: 1 / Math.sqrt(dHead),
      attnScoresSoftCap: null,
      windowSize: null,
      attnTypes: [],
      gatedMlp: false,
      actFn: oneOf(raw, 'hidden_act', { gelu: 'gelu', gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new' }, 'gelu'),
      parallelAttnMlp: bool(raw, 'use_parallel_residual', true),
      useNormalizationBeforeAndAfter: false,
      embedScale: 1,
      outputLogitsSoftCap: null,
      tiedEmbeddings: bool(raw, 'tie_word_embeddings', false),
      weightPrefix: 'gpt_neox.',
      headKey: 'embed_out',
      qkvBias: bool(raw, 'attention_bias', true),
      attnOutBias: bool(raw, 'attention_bias', true),
      mlpBias: true,
    } satisfies ModelConfig;
  },
  top: (c) => ({
    wte: { weight: keyIn(c, 'embed_in.weight') },
    lnF: { weight: keyIn(c, 'final_layer_norm.weight'), bias: keyIn(c, 'final_layer_norm.bias') },
    lmHead: c.tiedEmbeddings ? { weight: keyIn(c, 'embed_in.weight') } : { weight: `${c.headKey}.weight` },
  }),
  block(c, l) {
    const p = keyIn(c, `layers.${l}.`);
    return {
      ln1: { weight: `${p}input_layernorm.weight`, bias: `${p}input_layernorm.bias` },
      ln2: { weight: `${p}post_attention_layernorm.weight`, bias: `${p}post_attention_layernorm.bias` },
      qkv: { ...linearKeys(p, 'attention.query_key_value', c.qkvBias), layout: 'perHead' },
      out: linearKeys(p, 'attention.dense', c.attnOutBias),
      fcIn: linearKeys(p, 'mlp.dense_h_to_4h', true),
      fcOut: linearKeys(p, 'mlp.dense_4h_to_h', true),
    };
  },
};
