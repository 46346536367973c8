import { LogitscopeError } from '../errors.ts';
import type { LensOverrides, LensRecord } from './lens-settings.ts';

/** The token-identity patchscope's target prompt (PROTOCOL.md). */
export const TOKEN_IDENTITY_PROMPT = 'cat -> cat\n1135 -> 1135\nhello -> hello\n?';
/** The logitscope's one-token target prompt. */
export const LOGITSCOPE_PROMPT = '?';

/** Which layer of the target prompt receives the vector taken from source layer l. */
export type TargetLayerRule = { kind: 'same' } | { kind: 'fixed'; layer: number };

/** A technique as a user asks for it. Ids name it in exports, the database and the UI. */
export type TechniqueSpec =
  | { id: 'logit_lens'; kind: 'logit_lens' }
  | { id: string; kind: 'patchscope'; prompt: string; targetLayer: TargetLayerRule }
  | { id: 'tuned_lens'; kind: 'tuned_lens'; lens?: LensOverrides };

/**
 * A patchscope with its target prompt tokenized (BOS included when the protocol uses one); the
 * tuned lens with the record of the fitted lens it reads through (null until the sweep's
 * preparation has fitted or found it: src-main/lens/).
 */
export type ResolvedTechnique =
  | { id: 'logit_lens'; kind: 'logit_lens' }
  | { id: string; kind: 'patchscope'; prompt: string; promptTokens: number[]; targetLayer: TargetLayerRule }
  | { id: 'tuned_lens'; kind: 'tuned_lens'; lens: LensRecord | null; overrides?: LensOverrides };

export const LOGIT_LENS: TechniqueSpec = { id: 'logit_lens', kind: 'logit_lens' };
export const TOKEN_IDENTITY: TechniqueSpec = { id: 'patchscope', kind: 'patchscope', prompt: TOKEN_IDENTITY_PROMPT, targetLayer: { kind: 'same' } };
export const LOGITSCOPE: TechniqueSpec = { id: 'logitscope', kind: 'patchscope', prompt: LOGITSCOPE_PROMPT, targetLayer: { kind: 'same' } };
/** The affine tuned lens, the Patchscopes paper's learned baseline (PROTOCOL.md); fitted per model and train slice. */
export const TUNED_LENS: TechniqueSpec = { id: 'tuned_lens', kind: 'tuned_lens' };
/** The techniques a sweep runs when none are named: the three that need no fitting. */
export const BUILT_IN_TECHNIQUES: readonly TechniqueSpec[] = [LOGIT_LENS, TOKEN_IDENTITY, LOGITSCOPE];
/** Every technique that has an id of its own (the choices a front offers besides custom prompts). */
export const NAMED_TECHNIQUES: readonly TechniqueSpec[] = [...BUILT_IN_TECHNIQUES, TUNED_LENS];

/** A custom patchscope; `index` numbers custom prompts in the order the user gave them. */
export function customPatchscope(prompt: string, index: number, targetLayer: TargetLayerRule = { kind: 'same' }): TechniqueSpec {
  if (prompt.length === 0) throw new LogitscopeError('prompt_empty', 'a custom patchscope prompt cannot be empty', `prompt[${index}]`);
  return { id: `custom_${index + 1}`, kind: 'patchscope', prompt, targetLayer };
}

/** Tokenizes each patchscope's target prompt; `tokenize` adds BOS when the protocol uses one. */
export function resolveTechniques(specs: readonly TechniqueSpec[], tokenize: (text: string) => number[]): ResolvedTechnique[] {
  const ids = new Set<string>();
  return specs.map((s) => {
    if (ids.has(s.id)) throw new LogitscopeError('argument_invalid', `technique "${s.id}" is listed twice`, 'techniques');
    ids.add(s.id);
    if (s.kind === 'logit_lens') return s;
    if (s.kind === 'tuned_lens') return { id: s.id, kind: s.kind, lens: null, ...(s.lens && { overrides: s.lens }) };
    return { ...s, promptTokens: tokenize(s.prompt) };
  });
}

export function isTunedLens(t: ResolvedTechnique): t is ResolvedTechnique & { kind: 'tuned_lens' } {
  return t.kind === 'tuned_lens';
}

/** The layer a row from source layer `layer` is injected at in the target prompt. */
export function targetLayerOf(t: ResolvedTechnique & { kind: 'patchscope' }, layer: number): number {
  return t.targetLayer.kind === 'same' ? layer : t.targetLayer.layer;
}
