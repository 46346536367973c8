import { LogitscopeError } from '../errors.ts';

/** The token-identity patchscope's target prompt (PROTOCOL.md). */
export const TOKEN_IDENTITY_PROMPT = 'cat -> cat\n1135 -> 1135\nhello -> hello\n?';
/** The logitscope's one-token target prompt. */
export const LOGITSCOPE_PROMPT = '?';

/** Which layer of the target prompt receives the vector taken from source layer l. */
export type TargetLayerRule = { kind: 'same' } | { kind: 'fixed'; layer: number };

/** A technique as a user asks for it. Ids name it in exports, the database and the UI. */
export type TechniqueSpec =
  | { id: 'logit_lens'; kind: 'logit_lens' }
  | { id: string; kind: 'patchscope'; prompt: string; targetLayer: TargetLayerRule };

/** A patchscope with its target prompt tokenized (BOS included when the protocol uses one). */
export type ResolvedTechnique =
  | { id: 'logit_lens'; kind: 'logit_lens' }
  | { id: string; kind: 'patchscope'; prompt: string; promptTokens: number[]; targetLayer: TargetLayerRule };

export const LOGIT_LENS: TechniqueSpec = { id: 'logit_lens', kind: 'logit_lens' };
export const TOKEN_IDENTITY: TechniqueSpec = { id: 'patchscope', kind: 'patchscope', prompt: TOKEN_IDENTITY_PROMPT, targetLayer: { kind: 'same' } };
export const LOGITSCOPE: TechniqueSpec = { id: 'logitscope', kind: 'patchscope', prompt: LOGITSCOPE_PROMPT, targetLayer: { kind: 'same' } };
export const BUILT_IN_TECHNIQUES: readonly TechniqueSpec[] = [LOGIT_LENS, TOKEN_IDENTITY, LOGITSCOPE];

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
    return s.kind === 'logit_lens' ? s : { ...s, promptTokens: tokenize(s.prompt) };
  });
}

/** The layer a row from source layer `layer` is injected at in the target prompt. */
export function targetLayerOf(t: ResolvedTechnique & { kind: 'patchscope' }, layer: number): number {
  return t.targetLayer.kind === 'same' ? layer : t.targetLayer.layer;
}
