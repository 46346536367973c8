import { blockWeightNames, type GptjConfig } from '../config.ts';

/** The parameters of one nn.Linear or nn.LayerNorm, by checkpoint key. GPT-J's attention projections have no bias. */
export interface Params {
  readonly weight: string;
  readonly bias?: string;
}

export interface NormParams extends Params {
  readonly bias: string;
}

/** One block's checkpoint keys, grouped the way the block uses them. */
export interface BlockWeights {
  readonly ln1: NormParams;
  readonly q: Params;
  readonly k: Params;
  readonly v: Params;
  readonly out: Params;
  readonly fcIn: Params;
  readonly fcOut: Params;
}

/** The keys outside the blocks. lm_head is not tied to wte in GPT-J, and it has a bias. */
export const TOP_WEIGHTS = Object.freeze({
  wte: { weight: 'transformer.wte.weight' },
  lnF: { weight: 'transformer.ln_f.weight', bias: 'transformer.ln_f.bias' },
  lmHead: { weight: 'lm_head.weight', bias: 'lm_head.bias' },
});

/** The keys of block l, as Hugging Face names them (spelled once, in config.ts, where the checkpoint is validated). */
export function blockWeights(l: number): BlockWeights {
  const n = blockWeightNames(l);
  return {
    ln1: { weight: n.ln1Weight, bias: n.ln1Bias },
    q: { weight: n.qProj },
    k: { weight: n.kProj },
    v: { weight: n.vProj },
    out: { weight: n.outProj },
    fcIn: { weight: n.fcIn, bias: n.fcInBias },
    fcOut: { weight: n.fcOut, bias: n.fcOutBias },
  };
}

/** Every checkpoint key the graphs read, top-level keys first, then block by block. */
export function allWeightNames(c: GptjConfig): string[] {
  const groups: Params[] = [...Object.values(TOP_WEIGHTS)];
  for (let l = 0; l < c.nLayers; l++) groups.push(...Object.values(blockWeights(l)));
  return groups.flatMap((p) => (p.bias ? [p.weight, p.bias] : [p.weight]));
}
