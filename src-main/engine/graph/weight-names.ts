import type { BlockWeights, NormParams, Params, TopWeights } from '../families/family.ts';
import type { ModelConfig } from '../model-config.ts';
import { gptj } from '../families/gptj.ts';
import { descriptionOf } from '../families/index.ts';

export type { BlockWeights, FusedQkv, NormParams, Params, TopWeights } from '../families/family.ts';

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
const GPTJ_KEYS = { weightPrefix: 'transformer.', headKey: 'lm_head' } as ModelConfig;

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
