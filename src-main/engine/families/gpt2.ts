import type { ModelConfig } from '../model-config.ts';
import { type FamilyDescription, gpt2StyleSizes, keyIn, linearKeys } from './family.ts';
import { bool, oneOf, unsupported } from './raw.ts';
import { ENDOFTEXT_ID } from './gptj.ts';

/**
 * GPT-2: learned absolute positions, LayerNorm, a sequential block (ln_1, attention, ln_2, MLP),
 * Conv1D weights stored [in, out], one fused c_attn for q, k and v side by side, and the head
 * tied to wte. The canonical gpt2 files name their keys without the "transformer." prefix.
 */
export const gpt2: FamilyDescription = {
  family: 'gpt2',
  modelTypes: ['gpt2'],
  weightPrefixes: ['transformer.', ''],
  headKeys: ['lm_head'],
  parse(raw) {
    const sizes = gpt2StyleSizes(raw, ENDOFTEXT_ID);
    if (bool(raw, 'scale_attn_by_inverse_layer_idx', false)) throw unsupported(raw, 'scale_attn_by_inverse_layer_idx is not supported');
    return {
      family: 'gpt2',
      modelType: 'gpt2',
      ...sizes,
      rotaryDim: 0,
      normalizationType: 'LN',
      normWeightPlusOne: false,
      positionalEmbeddingType: 'standard',
      rotaryAdjacentPairs: false,
      rotaryBase: 10000,
      ropeScaling: null,
      attnScale: bool(raw, 'scale_attn_weights', true) ? 1 / Math.sqrt(sizes.dHead) : 1,
      attnScoresSoftCap: null,
      windowSize: null,
      attnTypes: [],
      gatedMlp: false,
      actFn: oneOf(raw, 'activation_function', { gelu_new: 'gelu_new', gelu: 'gelu', gelu_pytorch_tanh: 'gelu_new' }, 'gelu_new'),
      parallelAttnMlp: false,
      useNormalizationBeforeAndAfter: false,
      embedScale: 1,
      outputLogitsSoftCap: null,
      tiedEmbeddings: bool(raw, 'tie_word_embeddings', true),
      weightPrefix: 'transformer.',
      headKey: 'lm_head',
      qkvBias: true,
      attnOutBias: true,
      mlpBias: true,
    } satisfies ModelConfig;
  },
  top: (c) => ({
    wte: { weight: keyIn(c, 'wte.weight') },
    wpe: { weight: keyIn(c, 'wpe.weight') },
    lnF: { weight: keyIn(c, 'ln_f.weight'), bias: keyIn(c, 'ln_f.bias') },
    lmHead: c.tiedEmbeddings ? { weight: keyIn(c, 'wte.weight') } : { weight: `${c.headKey}.weight` },
  }),
  block(c, l) {
    const p = keyIn(c, `h.${l}.`);
    return {
      ln1: { weight: `${p}ln_1.weight`, bias: `${p}ln_1.bias` },
      ln2: { weight: `${p}ln_2.weight`, bias: `${p}ln_2.bias` },
      qkv: { ...linearKeys(p, 'attn.c_attn', true, true), layout: 'blocks' },
      out: linearKeys(p, 'attn.c_proj', true, true),
      fcIn: linearKeys(p, 'mlp.c_fc', true, true),
      fcOut: linearKeys(p, 'mlp.c_proj', true, true),
    };
  },
};
