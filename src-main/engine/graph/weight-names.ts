import type { ModelConfig } from '../config.ts';
import { gptj } from '../families/gptj.ts';
import { descriptionOf } from '../families/index.ts';

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

/** The keys outside the blocks, as this model's checkpoint names them. */
export function topWeights(c: ModelConfig): TopWeights {
  return descriptionOf(c).top(c);
}

/** The keys of block l, as this model's checkpoint names them. */
export function layerWeights(c: ModelConfig, l: number): BlockWeights {
  return descriptionOf(c).block(c, l);
}

/** The keys of GPT-J's block l (the names a GPT-J checkpoint has always had). */
export function blockWeights(l: number): BlockWeights {
  return gptj.block(GPTJ_KEYS, l);
}

/** GPT-J's keys depend only on its one prefix. */
const GPTJ_KEYS = { weightPrefix: 'transformer.' } as ModelConfig;

/** Every weight the graphs read with its shape as the config implies, top-level keys first, then block by block. */
export function weightShapes(c: ModelConfig): Map<string, number[]> {
  const { dModel: d, nHeads, nKeyValueHeads, dHead, dMlp, dVocab, nCtx } = c;
  const shapes = new Map<string, number[]>();
  const norm = (p: NormParams | undefined) => {
    if (!p) return;
    shapes.set(p.weight, [d]);
    if (p.bias) shapes.set(p.bias, [d]);
  };
  // HF's nn.Linear is [out, in]; GPT-2's Conv1D the transpose.
  const linear = (p: Params | undefined, out: number, inp: number) => {
    if (!p) return;
    shapes.set(p.weight, p.transposed ? [inp, out] : [out, inp]);
    if (p.bias) shapes.set(p.bias, [out]);
  };
  const top = topWeights(c);
  shapes.set(top.wte.weight, [dVocab, d]);
  if (top.wpe) shapes.set(top.wpe.weight, [nCtx, d]);
  norm(top.lnF);
  linear(top.lmHead, dVocab, d);
  for (let l = 0; l < c.nLayers; l++) {
    const w = layerWeights(c, l);
    norm(w.ln1);
    norm(w.ln2);
    norm(w.lnAttnOut);
    norm(w.lnMlpOut);
    linear(w.q, nHeads * dHead, d);
    linear(w.k, nKeyValueHeads * dHead, d);
    linear(w.v, nKeyValueHeads * dHead, d);
    linear(w.qkv, 3 * nHeads * dHead, d);
    linear(w.out, d, nHeads * dHead);
    linear(w.gate, dMlp, d);
    linear(w.fcIn, dMlp, d);
    linear(w.fcOut, d, dMlp);
  }
  return shapes;
}

/** Every checkpoint key the graphs read, top-level keys first, then block by block (a tied head's keys once). */
export function allWeightNames(c: ModelConfig): string[] {
  return [...weightShapes(c).keys()];
}
