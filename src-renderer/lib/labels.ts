/** Names the UI shows, in one place, as PROTOCOL.md words them. */
import type { RunView } from '../../src-main/api/contract.ts';

export type Convention = 'surprisal' | 'surprisalPaper';

export const CONVENTIONS: Record<Convention, string> = {
  surprisal: "surprisal (seed): −ln p_technique(model's top-1)",
  surprisalPaper: "surprisal (paper): −ln p_model(technique's top-1)",
};

const BUILT_IN: Record<string, string> = {
  logit_lens: 'logit lens',
  patchscope: 'token-identity patchscope',
  logitscope: 'logitscope',
  tuned_lens: 'affine tuned lens',
};

/** "custom 1: hello->there;?->" for custom patchscopes, the PROTOCOL.md name otherwise. */
export function techniqueLabel(id: string, prompts?: RunView['techniquePrompts']): string {
  if (BUILT_IN[id]) return BUILT_IN[id];
  const prompt = prompts?.[id]?.prompt;
  const short = prompt && prompt.length > 24 ? `${prompt.slice(0, 23)}…` : prompt;
  return short ? `${id.replace('_', ' ')}: ${JSON.stringify(short)}` : id.replace('_', ' ');
}

export { showToken } from '../../src-main/api/format.ts';

export function layerLabel(layer: number): string {
  return layer === -1 ? 'embeddings (−1)' : String(layer);
}

/** A layer named on its own (a tooltip's title): "layer 2", "embeddings (layer −1)". */
export function layerTitle(layer: number): string {
  return layer === -1 ? 'embeddings (layer −1)' : `layer ${layer}`;
}

/** A tuned-lens fit's progress in words (sweep.preparing's `lens`). */
export function fitWords(fit: { phase: 'selecting' | 'collecting' | 'solving' | 'checking'; done: number; total: number; refused?: string }): string {
  if (fit.refused) return `The cached tuned lens was refused (${fit.refused}): fitting it again…`;
  if (fit.phase === 'selecting') return 'Fitting the affine tuned lens (once per model and train slice): reading its train slice…';
  if (fit.phase === 'collecting') return `Fitting the affine tuned lens: ${fit.done} of ${fit.total} train examples run`;
  if (fit.phase === 'solving') return `Fitting the affine tuned lens: layer ${fit.done + 1} of ${fit.total} solved`;
  return `Checking the fitted lens on held-out examples: ${fit.done} of ${fit.total}`;
}
