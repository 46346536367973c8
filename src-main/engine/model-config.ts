/**
 * One model's configuration as plain data, read from config.json by its family's description
 * (families/, through config.ts). Its own module, of types only, so that the families and the
 * graph builder can name it without importing the reader that imports them.
 */

/**
 * The hyper-parameters every family has, under TransformerLens-style names. GPT-J was the first
 * family, and code written for it (the GPT-J float64 reference, its tests) reads only these.
 */
export interface GptjConfig {
  readonly nLayers: number;
  readonly dModel: number;
  readonly nHeads: number;
  /** Size of one head; dModel / nHeads except where config.json says otherwise (Gemma 2, some Mistral and Llama 3). */
  readonly dHead: number;
  readonly dMlp: number;
  readonly nCtx: number;
  /** Rotary embedding covers only the first `rotaryDim` dims of each head (64 of 256 in GPT-J 6B; 0 without rotary). */
  readonly rotaryDim: number;
  /**
   * Rows of the embedding and unembedding: 50400 in GPT-J 6B, padded up from the tokenizer's
   * 50257 real tokens for TPU-friendly shapes. The tokenizer never produces the padding rows, but
   * the unembedding still scores them, and an argmax over all rows can pick one (rarely, in
   * undertrained or early layers); the app keeps them in the argmax, as TransformerLens did.
   */
  readonly dVocab: number;
  /** The epsilon of every norm, LayerNorm or RMSNorm. */
  readonly layerNormEps: number;
  readonly bosTokenId: number;
}

/** The families the engine runs; Qwen2 and Mistral are Llama descriptions (families/llama.ts). */
export type FamilyName = 'gptj' | 'llama' | 'gemma2' | 'gpt_neox' | 'gpt2';

/** Llama 3's (and the older linear) rotary frequency scaling, from config.json's rope_scaling. */
export type RopeScaling =
  | { readonly ropeType: 'linear'; readonly factor: number }
  | { readonly ropeType: 'llama3'; readonly factor: number; readonly lowFreqFactor: number; readonly highFreqFactor: number; readonly originalMaxPositionEmbeddings: number };

/**
 * One model's configuration: the common sizes, and the family's description of its block (names
 * after TransformerLens's HookedTransformerConfig where it has one). Plain data, so it crosses to
 * the engine's worker as is; the family's weight names are looked up by `family` (families/).
 */
export interface ModelConfig extends GptjConfig {
  readonly family: FamilyName;
  /** config.json's model_type (llama, qwen2 and mistral share the llama description). */
  readonly modelType: string;
  /** Key/value heads: fewer than nHeads under grouped-query attention, each shared by nHeads / nKeyValueHeads query heads. */
  readonly nKeyValueHeads: number;
  /** LN: LayerNorm with a bias; RMS: RMSNorm. */
  readonly normalizationType: 'LN' | 'RMS';
  /** Gemma's RMSNorm scales by (1 + w): its checkpoints store w around 0. */
  readonly normWeightPlusOne: boolean;
  /** rotary (GPT-J, Llama, NeoX, Gemma) or learned absolute positions added to the embeddings (GPT-2). */
  readonly positionalEmbeddingType: 'rotary' | 'standard';
  /** GPT-J rotates dims (2i, 2i+1) together ("rotate every two"); the others rotate i with i + rotaryDim/2 ("rotate half"). */
  readonly rotaryAdjacentPairs: boolean;
  readonly rotaryBase: number;
  readonly ropeScaling: RopeScaling | null;
  /** Multiplies q·k: 1/√dHead, or Gemma 2's query_pre_attn_scalar^-½. */
  readonly attnScale: number;
  /** Gemma 2: scores become cap·tanh(scores/cap) before the mask. */
  readonly attnScoresSoftCap: number | null;
  /** Keys at least this many positions before the query are not attended to, in the layers marked local. */
  readonly windowSize: number | null;
  /** Per layer: local layers use the sliding window, global ones see the whole prefix. */
  readonly attnTypes: readonly ('global' | 'local')[];
  /** gated: down(act(gate(x)) · up(x)) (SwiGLU, GeGLU); else fc_out(act(fc_in(x))). */
  readonly gatedMlp: boolean;
  /** gelu_new is the tanh approximation (also Gemma's gelu_pytorch_tanh); gelu is the exact erf form (NeoX). */
  readonly actFn: 'gelu_new' | 'gelu' | 'silu';
  /** Attention and MLP both read resid_pre (GPT-J, most NeoX); else the MLP reads resid_mid. */
  readonly parallelAttnMlp: boolean;
  /** Gemma 2: a norm also on attention's and the MLP's outputs, before each is added to the residual. */
  readonly useNormalizationBeforeAndAfter: boolean;
  /** The embeddings are multiplied by this (Gemma: √dModel); 1 elsewhere. */
  readonly embedScale: number;
  /** Gemma 2: logits become cap·tanh(logits/cap). */
  readonly outputLogitsSoftCap: number | null;
  /** The unembedding is the embedding matrix itself (GPT-2, Gemma, some Llama). */
  readonly tiedEmbeddings: boolean;
  /** Which linears have biases (the checkpoint holds them): q/k/v, attention's output, the MLP's. */
  readonly qkvBias: boolean;
  readonly attnOutBias: boolean;
  readonly mlpBias: boolean;
  /** The untied head's key without ".weight": lm_head, or embed_out in NeoX's hub files (transformers 5 saves it as lm_head). */
  readonly headKey: string;
  /** Where the checkpoint's model keys start ("transformer.", "model.", "gpt_neox.", or "" for GPT-2's canonical file). */
  readonly weightPrefix: string;
}
