import type { FamilyName } from '../model-config.ts';
import type { FamilyDescription } from './family.ts';
import { gemma2 } from './gemma2.ts';
import { gpt2 } from './gpt2.ts';
import { gptNeox } from './gpt-neox.ts';
import { gptj } from './gptj.ts';
import { llama } from './llama.ts';

export const FAMILIES: readonly FamilyDescription[] = [gptj, llama, gemma2, gptNeox, gpt2];

/** The description that reads config.json's model_type, if any does. */
export function descriptionFor(modelType: unknown): FamilyDescription | undefined {
  return FAMILIES.find((d) => d.modelTypes.includes(modelType as string));
}

export function descriptionOf(c: { readonly family: FamilyName }): FamilyDescription {
  const d = FAMILIES.find((f) => f.family === c.family);
  if (!d) throw new Error(`no description of the ${c.family} family`);
  return d;
}
