/** The API's technique choices as the sweep's specs (model-check.ts checks them against the model). */
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
