/**
 * Text forms of API values, read in one place for every front: the CLI's flags and the app's
 * text fields. Pure (no Node modules): the renderer bundles it.
 */
import { LogitscopeError } from '../errors.ts';
import type { TechniqueChoice } from './contract.ts';

const BUILT_IN_IDS = ['logit_lens', 'patchscope', 'logitscope'] as const;
/** Ids a list may name: the built-in three (the default) and the tuned lens (fitted on first use). */
const NAMED_IDS = [...BUILT_IN_IDS, 'tuned_lens'] as const;

/**
 * "all" (or nothing) = every layer; otherwise a comma list of layers and ranges, "0,5,10-27";
 * -1 (the embeddings) may be listed, also as the start of a range ("-1-3").
 * With `nLayers`, layers past the last are refused here rather than by the sweep.
 */
export function parseLayerList(text: string | undefined, opts: { field?: string; nLayers?: number } = {}): number[] | null {
  const field = opts.field ?? 'layers';
  if (text === undefined || text.trim() === '' || text.trim() === 'all') return null;
  const layers: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(-1|\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new LogitscopeError('argument_invalid', `cannot read "${part.trim()}" (use e.g. all, 0,5,10-27 or -1 for the embeddings)`, field);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new LogitscopeError('argument_invalid', `range "${part.trim()}" runs backwards`, field);
    if (opts.nLayers !== undefined && to >= opts.nLayers) {
      throw new LogitscopeError('layer_out_of_range', `layer ${to} does not exist: this model has layers 0..${opts.nLayers - 1} (and -1, the embeddings)`, field);
    }
    for (let l = from; l <= to; l++) layers.push(l);
  }
  return [...new Set(layers)].sort((a, b) => a - b);
}

/** A custom prompt's target layer rule: "same" (default) or a layer number. */
export function parseTargetLayer(text: string | undefined, field = 'prompt-layer'): { kind: 'same' } | { kind: 'fixed'; layer: number } {
  if (text === undefined || text.trim() === '' || text.trim() === 'same') return { kind: 'same' };
  const layer = Number(text);
  if (!Number.isInteger(layer) || layer < -1) throw new LogitscopeError('argument_invalid', `must be "same" or a layer number, got "${text}"`, field);
  return { kind: 'fixed', layer };
}

/**
 * Built-in techniques by id ("logit_lens,patchscope,logitscope"; default: all three), then one
 * custom patchscope per prompt, each with the target layer rule at the same index.
 */
export function parseTechniqueList(list: string | undefined, prompts: readonly string[] = [], promptLayers: readonly string[] = []): TechniqueChoice[] {
  const ids = list === undefined ? [...BUILT_IN_IDS] : list.split(',').map((s) => s.trim()).filter(Boolean);
  const choices: TechniqueChoice[] = ids.map((id) => {
    if (!(NAMED_IDS as readonly string[]).includes(id)) {
      throw new LogitscopeError('argument_invalid', `unknown technique "${id}" (known: ${NAMED_IDS.join(', ')}; add custom ones with --prompt)`, 'techniques');
    }
    return { id: id as (typeof NAMED_IDS)[number] };
  });
  if (promptLayers.length > prompts.length) {
    throw new LogitscopeError('argument_invalid', `${promptLayers.length} --prompt-layer values for ${prompts.length} --prompt values`, 'prompt-layer');
  }
  prompts.forEach((prompt, i) => choices.push({ id: 'custom', prompt, targetLayer: parseTargetLayer(promptLayers[i]) }));
  return choices;
}

/** The export format a file name implies, when --format is not given. */
export function formatFromFileName(file: string): 'json' | 'csv' | 'parquet' | undefined {
  const m = /\.(json|csv|parquet)$/i.exec(file);
  return m ? (m[1].toLowerCase() as 'json' | 'csv' | 'parquet') : undefined;
}
