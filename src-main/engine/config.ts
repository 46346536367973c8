import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError } from '../errors.ts';
import { descriptionFor, FAMILIES } from './families/index.ts';
import { blockWeights, weightShapes } from './graph/weight-names.ts';
import type { GptjConfig, ModelConfig } from './model-config.ts';

export type { FamilyName, GptjConfig, ModelConfig, RopeScaling } from './model-config.ts';
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
