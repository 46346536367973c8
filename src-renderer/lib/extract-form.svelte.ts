/**
 * The Extract view's state, kept here rather than in the component so that switching tabs does not
 * lose the prompt, the chosen position or the result; and the one function that builds its request.
 */
import type { ExtractView, Payload, TechniqueChoice } from '../../src-main/api/contract.ts';
import { customChoices, type CustomPrompt } from './custom-prompts.ts';

/** Top-k kept per cell: more than the grid shows, so that a followed token is found more often. */
export const EXTRACT_K = 10;
/** The picture keeps more per cell: a pinned token's rank and probability exist only inside the top-k. */
export const PICTURE_K = 20;

export const extractForm = $state({
  text: '',
  bos: false,
  /** The prompt as the loaded model tokenizes it (null until tokenized). */
  tokens: null as { id: number; text: string }[] | null,
  /** The chosen position; null = the last token. */
  position: null as number | null,
  customs: [] as CustomPrompt[],
  /** Read every position (the logit-lens picture) instead of the chosen one. */
  picture: false,
  /** Add the affine tuned lens (read through the lens last fitted for this model by a sweep). */
  tunedLens: false,
  follow: null as { id: number; text: string } | null,
  result: null as ExtractView | null,
  /** The request behind `result`, which "Save as example" stores. */
  shownRequest: null as Payload<'extract'> | null,
  running: false,
});

export const chosenPosition = () => extractForm.position ?? (extractForm.tokens ? extractForm.tokens.length - 1 : null);

/** The request for the form as it is; a mistake the page can see is thrown with its field. */
export function extractRequest(): Payload<'extract'> {
  const f = extractForm;
  const techniques: TechniqueChoice[] = [{ id: 'logit_lens' }, { id: 'patchscope' }, { id: 'logitscope' }];
  // Their error paths are where the API would report them: techniques.3 + i.
  techniques.push(...customChoices(f.customs, (i) => `Target prompt ${i + 1}`, (i, field) => `techniques.${3 + i}.${field}`));
  // After the custom prompts, so their error paths (techniques.3 + i) stay as they are.
  if (f.tunedLens) techniques.push({ id: 'tuned_lens' });
  return {
    text: f.text,
    bos: f.bos,
    ...(f.picture ? { positions: 'all' as const } : f.position !== null && { position: f.position }),
    k: f.picture ? PICTURE_K : EXTRACT_K,
    techniques,
    ...(f.follow && { follow: f.follow.id }),
  };
}

/** Which field an API error belongs next to: the prompt, the position, the target prompts, or none. */
export function fieldOf(error: unknown): 'text' | 'position' | 'techniques' | 'other' {
  const path = (error as { path?: unknown })?.path;
  if (path === 'text') return 'text';
  if (path === 'position') return 'position';
  if (typeof path === 'string' && path.startsWith('techniques')) return 'techniques';
  return 'other';
}
