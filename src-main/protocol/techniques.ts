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

/** How prompts become tokens on one checkpoint under one `bos` setting (engine/bos.ts promptTokenizer, Engine.promptTokenizer). */
export interface PromptTokenizer {
  /** A prompt's ids, with BOS in front where the plan puts one. */
  tokenize(text: string): number[];
  /** How many ids tokenize puts before the text's own: 1 with a BOS, else 0. */
  readonly bosLength: number;
  tokenString(id: number): string;
  /** The one token that stands for exactly `text`, with BOS in front where the plan puts one; null where no single token does. */
  oneToken(text: string): number[] | null;
}

/**
 * Tokenizes each patchscope's target prompt with the checkpoint's own tokenizer, BOS in front where
 * the protocol's plan puts one. The two built-in prompts are made for the family's tokenizer
 * (PROTOCOL.md "Families"): the logitscope's target is the vocabulary's one token for exactly "?"
 * (not encode("?"), which a SentencePiece tokenizer spells "▁?" or "▁" + "?"), refused where there
 * is none; the token-identity prompt must end in a "?" token of its own, the position the patch
 * overwrites. Both are checked here, before any work.
 */
export function resolveTechniques(specs: readonly TechniqueSpec[], tokenizer: PromptTokenizer): ResolvedTechnique[] {
  const ids = new Set<string>();
  return specs.map((s) => {
    if (ids.has(s.id)) throw new LogitscopeError('argument_invalid', `technique "${s.id}" is listed twice`, 'techniques');
    ids.add(s.id);
    if (s.kind === 'logit_lens') return s;
    if (s.kind === 'tuned_lens') return { id: s.id, kind: s.kind, lens: null, ...(s.lens && { overrides: s.lens }) };
    return { ...s, promptTokens: builtInPromptTokens(s, tokenizer) ?? tokenizer.tokenize(s.prompt) };
  });
}

/** The target tokens of the built-in logitscope and token-identity prompts, checked; undefined for any other prompt. */
function builtInPromptTokens(s: TechniqueSpec & { kind: 'patchscope' }, tokenizer: PromptTokenizer): number[] | undefined {
  if (s.id === LOGITSCOPE.id && s.prompt === LOGITSCOPE_PROMPT) {
    const tokens = tokenizer.oneToken(LOGITSCOPE_PROMPT);
    if (tokens) return tokens;
    const spelled = tokenizer.tokenize(LOGITSCOPE_PROMPT).slice(tokenizer.bosLength).map((id) => tokenizer.tokenString(id));
    throw new LogitscopeError('prompt_unsuitable', `the logitscope needs "?" to be one token, but this tokenizer has no such token (it spells "?" as ${JSON.stringify(spelled)})`, 'logitscope');
  }
  if (s.id === TOKEN_IDENTITY.id && s.prompt === TOKEN_IDENTITY_PROMPT) {
    const tokens = tokenizer.tokenize(s.prompt);
    const last = tokenizer.tokenString(tokens[tokens.length - 1]);
    if (last.replace(/^ /, '') !== '?') {
      const ending = tokens.slice(-3).map((id) => tokenizer.tokenString(id));
      throw new LogitscopeError('prompt_unsuitable', `the token-identity prompt must end in a "?" token of its own (the patched position), but this tokenizer ends it with ${JSON.stringify(ending)}`, 'patchscope');
    }
    return tokens;
  }
  return undefined;
}

export function isTunedLens(t: ResolvedTechnique): t is ResolvedTechnique & { kind: 'tuned_lens' } {
  return t.kind === 'tuned_lens';
}

/** The layer a row from source layer `layer` is injected at in the target prompt. */
export function targetLayerOf(t: ResolvedTechnique & { kind: 'patchscope' }, layer: number): number {
  return t.targetLayer.kind === 'same' ? layer : t.targetLayer.layer;
}
