import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError } from '../errors.ts';

/** GPT-J hyper-parameters under TransformerLens-style names, read from a Hugging Face `config.json`. */
export interface GptjConfig {
  readonly nLayers: number;
  readonly dModel: number;
  readonly nHeads: number;
  readonly dHead: number;
  readonly dMlp: number;
  readonly nCtx: number;
  /** Rotary embedding covers only the first `rotaryDim` dims of each head (64 of 256 in GPT-J 6B). */
  readonly rotaryDim: number;
  /**
   * Rows of the embedding and unembedding: 50400 in GPT-J 6B, padded up from the tokenizer's
   * 50257 real tokens for TPU-friendly shapes. The tokenizer never produces the padding rows, but
   * the unembedding still scores them, and an argmax over all rows can pick one (rarely, in
   * undertrained or early layers); the app keeps them in the argmax, as TransformerLens did.
   */
  readonly dVocab: number;
  readonly layerNormEps: number;
  readonly bosTokenId: number;
}

export const ENDOFTEXT_ID = 50256;

type Raw = Record<string, unknown>;

function int(raw: Raw, key: string, file: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new LogitscopeError('config_invalid', `"${key}" must be a positive integer, got ${JSON.stringify(raw[key])}`, file);
  }
  return v;
}

/** Validates a parsed `config.json` object; `file` is only used in error messages. */
export function parseGptjConfig(raw: unknown, file: string): GptjConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new LogitscopeError('config_invalid', 'expected a JSON object', file);
  }
  const r = raw as Raw;
  if (r.model_type !== 'gptj') {
    throw new LogitscopeError(
      'model_type_unsupported',
      `model_type is ${JSON.stringify(r.model_type)}; only "gptj" checkpoints are supported`,
      file,
    );
  }
  const dModel = int(r, 'n_embd', file);
  const nHeads = int(r, 'n_head', file);
  if (dModel % nHeads !== 0) {
    throw new LogitscopeError('config_invalid', `n_embd (${dModel}) is not divisible by n_head (${nHeads})`, file);
  }
  const dHead = dModel / nHeads;
  const rotaryDim = r.rotary_dim == null ? dHead : int(r, 'rotary_dim', file);
  if (rotaryDim > dHead || rotaryDim % 2 !== 0) {
    throw new LogitscopeError('config_invalid', `rotary_dim (${rotaryDim}) must be even and at most the head size (${dHead})`, file);
  }
  const act = r.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new') {
    throw new LogitscopeError('config_invalid', `activation_function ${JSON.stringify(act)} is not supported (GPT-J uses "gelu_new")`, file);
  }
  const eps = r.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0)) {
    throw new LogitscopeError('config_invalid', `"layer_norm_epsilon" must be a positive number`, file);
  }
  const bos = r.bos_token_id ?? ENDOFTEXT_ID;
  if (typeof bos !== 'number' || !Number.isInteger(bos) || bos < 0) {
    throw new LogitscopeError('config_invalid', `"bos_token_id" must be a non-negative integer`, file);
  }
  return Object.freeze({
    nLayers: int(r, 'n_layer', file),
    dModel,
    nHeads,
    dHead,
    dMlp: r.n_inner == null ? 4 * dModel : int(r, 'n_inner', file),
    nCtx: int(r, 'n_positions', file),
    rotaryDim,
    dVocab: int(r, 'vocab_size', file),
    layerNormEps: eps,
    bosTokenId: bos,
  });
}

export function readGptjConfig(dir: string): GptjConfig {
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
  return parseGptjConfig(raw, file);
}

/** The checkpoint keys of one block, as Hugging Face names them. */
export function blockWeightNames(l: number) {
  const p = `transformer.h.${l}`;
  return {
    ln1Weight: `${p}.ln_1.weight`,
    ln1Bias: `${p}.ln_1.bias`,
    qProj: `${p}.attn.q_proj.weight`,
    kProj: `${p}.attn.k_proj.weight`,
    vProj: `${p}.attn.v_proj.weight`,
    outProj: `${p}.attn.out_proj.weight`,
    fcIn: `${p}.mlp.fc_in.weight`,
    fcInBias: `${p}.mlp.fc_in.bias`,
    fcOut: `${p}.mlp.fc_out.weight`,
    fcOutBias: `${p}.mlp.fc_out.bias`,
  } as const;
}

/** Every weight a GPT-J checkpoint must hold, with the shape the config implies (HF layout: Linear is [out, in]). */
export function expectedWeightShapes(c: GptjConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>([
    ['transformer.wte.weight', [c.dVocab, c.dModel]],
    ['transformer.ln_f.weight', [c.dModel]],
    ['transformer.ln_f.bias', [c.dModel]],
    ['lm_head.weight', [c.dVocab, c.dModel]],
    ['lm_head.bias', [c.dVocab]],
  ]);
  for (let l = 0; l < c.nLayers; l++) {
    const w = blockWeightNames(l);
    shapes.set(w.ln1Weight, [c.dModel]);
    shapes.set(w.ln1Bias, [c.dModel]);
    shapes.set(w.qProj, [c.dModel, c.dModel]);
    shapes.set(w.kProj, [c.dModel, c.dModel]);
    shapes.set(w.vProj, [c.dModel, c.dModel]);
    shapes.set(w.outProj, [c.dModel, c.dModel]);
    shapes.set(w.fcIn, [c.dMlp, c.dModel]);
    shapes.set(w.fcInBias, [c.dMlp]);
    shapes.set(w.fcOut, [c.dModel, c.dMlp]);
    shapes.set(w.fcOutBias, [c.dModel]);
  }
  return shapes;
}

/** Buffers that GPT-J checkpoints carry but that are not weights (a causal mask and a scalar). */
export function isNonWeightBuffer(name: string): boolean {
  return /\.attn\.(bias|masked_bias)$/.test(name);
}
