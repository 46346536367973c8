/**
 * Custom patchscope target prompts as the Sweep panel and the Extract view edit them, and the one
 * conversion to technique choices, which refuses a blank prompt or a missing fixed layer before
 * anything is sent.
 */
import type { TechniqueChoice } from '../../src-main/api/contract.ts';
import { LogitscopeError } from '../../src-main/errors.ts';

export interface CustomPrompt {
  key: number;
  prompt: string;
  target: 'same' | 'fixed';
  layer: number | null;
}

/**
 * `name(i)` is how the form calls prompt i ("Custom patchscope 2"); `path(i, field)` the field an
 * error is shown next to.
 */
export function customChoices(customs: readonly CustomPrompt[], name: (i: number) => string, path: (i: number, field: 'prompt' | 'targetLayer') => string): TechniqueChoice[] {
  return customs.map((c, i) => {
    if (c.prompt.trim() === '') throw new LogitscopeError('prompt_empty', `${name(i)} is empty: type a prompt or remove it.`, path(i, 'prompt'));
    if (c.target === 'fixed' && (c.layer === null || !Number.isInteger(c.layer))) {
      throw new LogitscopeError('argument_invalid', `${name(i)}: enter the fixed target layer.`, path(i, 'targetLayer'));
    }
    return { id: 'custom', prompt: c.prompt, targetLayer: c.target === 'same' ? { kind: 'same' } : { kind: 'fixed', layer: c.layer! } };
  });
}
