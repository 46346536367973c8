/** The API's technique choices as the sweep's specs, and the checks they need against the loaded model. */
import type { Engine } from '../engine/engine.ts';
import { LogitscopeError } from '../errors.ts';
import { BUILT_IN_TECHNIQUES, customPatchscope, TUNED_LENS, type TechniqueSpec } from '../protocol/techniques.ts';
import type { TechniqueChoice } from './contract.ts';

/** The sweep's technique specs from the API's choices; custom prompts are numbered in order. */
export function techniqueSpecs(choices: readonly TechniqueChoice[]): TechniqueSpec[] {
  let custom = 0;
  return choices.map((c) => {
    if (c.id === 'custom') return customPatchscope(c.prompt, custom++, c.targetLayer ?? { kind: 'same' });
    if (c.id === 'tuned_lens') return c.lens ? { ...TUNED_LENS, lens: c.lens } : TUNED_LENS;
    return BUILT_IN_TECHNIQUES.find((t) => t.id === c.id)!;
  });
}

/** Layers and fixed target layers must exist in the loaded model: checked before any work. */
export function checkLayers(engine: Engine, layers: readonly number[] | null | undefined, choices: readonly TechniqueChoice[]): void {
  const last = engine.config.nLayers - 1;
  const bad = (layers ?? []).filter((l) => l > last);
  if (bad.length > 0) throw new LogitscopeError('layer_out_of_range', `layer${bad.length > 1 ? 's' : ''} ${bad.join(', ')} past the last (${last}) of this model`, 'layers');
  choices.forEach((c, i) => {
    if (c.id === 'custom' && c.targetLayer?.kind === 'fixed' && c.targetLayer.layer > last) {
      throw new LogitscopeError('layer_out_of_range', `target layer ${c.targetLayer.layer} is past the last (${last}) of this model`, `techniques.${i}.targetLayer.layer`);
    }
  });
}
