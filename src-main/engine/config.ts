import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError } from '../errors.ts';
import { descriptionFor, FAMILIES } from './families/index.ts';
import { blockWeights, weightShapes } from './graph/weight-names.ts';

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
  /** Where the checkpoint's model keys start ("transformer.", "model.", "gpt_neox.", or "" for GPT-2's canonical file). */
  readonly weightPrefix: string;
}

export { ENDOFTEXT_ID } from './families/gptj.ts';

/** Validates a parsed `config.json` object of any supported family; `file` is only used in error messages. */
export function parseModelConfig(raw: unknown, file: string): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new LogitscopeError('config_invalid', 'expected a JSON object', file);
  }
  const r = raw as Record<string, unknown>;
  const description = descriptionFor(r.model_type);
  if (!description) {
    throw new LogitscopeError('model_type_unsupported', `model_type is ${JSON.stringify(r.model_type)}; supported: ${supportedModelTypes().join(', ')}`, file);
  }
  return Object.freeze(description.parse({ r, file }));
}

export function supportedModelTypes(): string[] {
  return FAMILIES.flatMap((d) => d.modelTypes);
}

/** The name from when GPT-J was the only family; it reads every family. */
export const parseGptjConfig = parseModelConfig;

export function readModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new LogitscopeError('config_missing', 'no config.json: this directory is not a Hugging Face checkpoint', file);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new LogitscopeError('config_invalid', `not valid JSON (${(e as Error).message})`, file);
  }
  return parseModelConfig(raw, file);
}

/** The name from when GPT-J was the only family; it reads every family. */
export const readGptjConfig = readModelConfig;

/** The checkpoint keys of one GPT-J block, as Hugging Face names them (the GPT-J float64 reference reads these). */
export function blockWeightNames(l: number) {
  const w = blockWeights(l);
  return {
    ln1Weight: w.ln1.weight,
    ln1Bias: w.ln1.bias!,
    qProj: w.q!.weight,
    kProj: w.k!.weight,
    vProj: w.v!.weight,
    outProj: w.out.weight,
    fcIn: w.fcIn.weight,
    fcInBias: w.fcIn.bias!,
    fcOut: w.fcOut.weight,
    fcOutBias: w.fcOut.bias!,
  } as const;
}

/**
 * Every weight a checkpoint must hold, with the shape the config implies (HF layout: Linear is
 * [out, in], GPT-2's Conv1D [in, out]). A config without a family is GPT-J's.
 */
export function expectedWeightShapes(c: GptjConfig | ModelConfig): Map<string, number[]> {
  return weightShapes('family' in c ? c : parseModelConfig(gptjConfigJson(c), 'config.json'));
}

/** A GPT-J config.json for the common sizes alone (the GPT-J reference's tests build configs by hand). */
function gptjConfigJson(c: GptjConfig): Record<string, unknown> {
  const { nLayers, dModel, nHeads, dMlp, nCtx, rotaryDim, dVocab, layerNormEps, bosTokenId } = c;
  return { model_type: 'gptj', n_layer: nLayers, n_embd: dModel, n_head: nHeads, n_inner: dMlp, n_positions: nCtx, rotary_dim: rotaryDim, vocab_size: dVocab, layer_norm_epsilon: layerNormEps, bos_token_id: bosTokenId };
}

/**
 * Buffers that checkpoints carry but that are not weights: causal masks and scalars
 * (GPT-J's and GPT-2's attn.bias / masked_bias, NeoX's attention.bias / masked_bias), and
 * rotary inverse frequencies that older Llama and NeoX files saved (recomputed from config.json).
 */
export function isNonWeightBuffer(name: string): boolean {
  return /\.(attn|attention)\.(bias|masked_bias)$/.test(name) || /\.rotary_emb\.inv_freq$/.test(name);
}
