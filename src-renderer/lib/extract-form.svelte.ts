/**
 * The Extract view's state, kept here rather than in the component so that switching tabs does not
 * lose the prompt, the chosen position or the result; and the one function that builds its request.
 */
import type { ExtractView, Payload, TechniqueChoice } from '../../src-main/api/contract.ts';
import { LogitscopeError } from '../../src-main/errors.ts';

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
  customs: [] as { key: number; prompt: string; target: 'same' | 'fixed'; layer: number | null }[],
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
  f.customs.forEach((c, i) => {
    if (c.prompt.trim() === '') throw new LogitscopeError('prompt_empty', `Target prompt ${i + 1} is empty: type a prompt or remove it.`, `techniques.${3 + i}.prompt`);
    if (c.target === 'fixed' && (c.layer === null || !Number.isInteger(c.layer))) {
      throw new LogitscopeError('argument_invalid', `Target prompt ${i + 1}: enter the fixed target layer.`, `techniques.${3 + i}.targetLayer`);
    }
    techniques.push({ id: 'custom', prompt: c.prompt, targetLayer: c.target === 'same' ? { kind: 'same' } : { kind: 'fixed', layer: c.layer! } });
  });
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
