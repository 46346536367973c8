import { LogitscopeError } from '../errors.ts';
import { BUILT_IN_TECHNIQUES, customPatchscope, type TargetLayerRule, type TechniqueSpec } from '../sweep/techniques.ts';

/** "all", or a comma list of layers and ranges: "0,5,10-27"; -1 (the embeddings) may be listed. */
export function parseLayers(text: string | undefined): number[] | null {
  if (text === undefined || text === 'all') return null;
  const layers: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(-1|\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new LogitscopeError('argument_invalid', `--layers: cannot read "${part}" (use e.g. all, 0,5,10-27 or -1 for the embeddings)`, '--layers');
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new LogitscopeError('argument_invalid', `--layers: range "${part}" runs backwards`, '--layers');
    for (let l = from; l <= to; l++) layers.push(l);
  }
  return [...new Set(layers)].sort((a, b) => a - b);
}

/** Built-in techniques by id, then one custom patchscope per --prompt with its --prompt-layer rule. */
export function parseTechniques(list: string | undefined, prompts: string[], promptLayers: string[]): TechniqueSpec[] {
  const ids = list === undefined ? BUILT_IN_TECHNIQUES.map((t) => t.id) : list.split(',').map((s) => s.trim()).filter(Boolean);
  const specs = ids.map((id) => {
    const t = BUILT_IN_TECHNIQUES.find((b) => b.id === id);
    if (!t) {
      const known = BUILT_IN_TECHNIQUES.map((b) => b.id).join(', ');
      throw new LogitscopeError('argument_invalid', `--techniques: unknown technique "${id}" (known: ${known}; add custom ones with --prompt)`, '--techniques');
    }
    return t;
  });
  if (promptLayers.length > prompts.length) {
    throw new LogitscopeError('argument_invalid', `${promptLayers.length} --prompt-layer values for ${prompts.length} --prompt values`, '--prompt-layer');
  }
  prompts.forEach((p, i) => specs.push(customPatchscope(p, i, parseRule(promptLayers[i]))));
  return specs;
}

function parseRule(text: string | undefined): TargetLayerRule {
  if (text === undefined || text === 'same') return { kind: 'same' };
  const layer = Number(text);
  if (!Number.isInteger(layer) || layer < -1) {
    throw new LogitscopeError('argument_invalid', `--prompt-layer must be "same" or a layer number, got "${text}"`, '--prompt-layer');
  }
  return { kind: 'fixed', layer };
}
