import type { ModelConfig } from '../model-config.ts';
import { checkRotaryDim, type FamilyDescription, gpt2StyleSizes, keyIn } from './family.ts';
import { int, invalid } from './raw.ts';

export const ENDOFTEXT_ID = 50256;

/** GPT-J: LayerNorm, rotate-every-two rotary on the first rotary_dim dims, one ln_1 read by both attention and the MLP. */
export const gptj: FamilyDescription = {
  family: 'gptj',
  modelTypes: ['gptj'],
  weightPrefixes: ['transformer.'],
  headKeys: ['lm_head'],
  parse(raw) {
    const sizes = gpt2StyleSizes(raw, ENDOFTEXT_ID);
    const act = raw.r.activation_function ?? 'gelu_new';
    if (act !== 'gelu_new') throw invalid(raw, `activation_function ${JSON.stringify(act)} is not supported (GPT-J uses "gelu_new")`);
    return {
      family: 'gptj',
      modelType: 'gptj',
      ...sizes,
      rotaryDim: checkRotaryDim(raw, int(raw, 'rotary_dim', sizes.dHead), sizes.dHead),
      normalizationType: 'LN',
      normWeightPlusOne: false,
      positionalEmbeddingType: 'rotary',
      rotaryAdjacentPairs: true,
      rotaryBase: 10000,
      ropeScaling: null,
      attnScale: 1 / Math.sqrt(sizes.dHead),
      attnScoresSoftCap: null,
      windowSize: null,
      attnTypes: [],
      gatedMlp: false,
      actFn: 'gelu_new',
      parallelAttnMlp: true,
      useNormalizationBeforeAndAfter: false,
      embedScale: 1,
      outputLogitsSoftCap: null,
      tiedEmbeddings: false,
      weightPrefix: 'transformer.',
      headKey: 'lm_head',
      qkvBias: false,
      attnOutBias: false,
      mlpBias: true,
    } satisfies ModelConfig;
  },
  // lm_head is not tied to wte in GPT-J, and it has a bias.
  top: (c) => ({
    wte: { weight: keyIn(c, 'wte.weight') },
    lnF: { weight: keyIn(c, 'ln_f.weight'), bias: keyIn(c, 'ln_f.bias') },
    lmHead: { weight: `${c.headKey}.weight`, bias: `${c.headKey}.bias` },
  }),
  // Attention projections have no bias.
  block(c, l) {
    const p = keyIn(c, `h.${l}.`);
    return {
      ln1: { weight: `${p}ln_1.weight`, bias: `${p}ln_1.bias` },
      q: { weight: `${p}attn.q_proj.weight` },
      k: { weight: `${p}attn.k_proj.weight` },
      v: { weight: `${p}attn.v_proj.weight` },
      out: { weight: `${p}attn.out_proj.weight` },
      fcIn: { weight: `${p}mlp.fc_in.weight`, bias: `${p}mlp.fc_in.bias` },
      fcOut: { weight: `${p}mlp.fc_out.weight`, bias: `${p}mlp.fc_out.bias` },
    };
  },
};
