/** Names the UI shows, in one place, as PROTOCOL.md words them. */
import type { RunView } from '../../src-main/api/contract.ts';
import { lensFitWords } from '../../src-main/api/format.ts';
import type { Measure } from './series.ts';

export type Convention = 'surprisal' | 'surprisalPaper';

export const CONVENTIONS: Record<Convention, string> = {
  surprisal: "surprisal (seed): −ln p_technique(model's top-1)",
  surprisalPaper: "surprisal (paper): −ln p_model(technique's top-1)",
};

/** The per-row measures as the measure switch and the grid name them (PROTOCOL.md "Per-row measures"). */
export const MEASURES: Record<Measure, { label: string; unit: string }> = {
  kl: { label: "KL(p_model ‖ p_technique)", unit: 'nats' },
  rank: { label: "rank of the model's top-1 (0 = technique's top-1)", unit: 'ids with a greater logit' },
  entropy: { label: 'entropy of the technique', unit: 'nats' },
  trackedSurprisal: { label: "surprisal of each record's tracked token", unit: 'nats, −ln p_technique(tracked)' },
  trackedRank: { label: "rank of each record's tracked token (0 = technique's top-1)", unit: 'ids with a greater logit' },
};

/**
 * A cell's measures in one line, or "not measured" for a row stored before they existed. The grid
 * counts ranks from 1 (1 = the cell's top-1), as its followed-token line does; the stored and
 * exported `rank` is that minus one, the number of ids above (PROTOCOL.md).
 */
export function measuresLine(c: { kl: number | null; rank: number | null; entropy: number | null }): string {
  if (c.kl === null || c.rank === null || c.entropy === null) return 'KL, rank, entropy: not measured';
  return `KL ${c.kl.toFixed(3)} · ref. rank ${c.rank + 1} · H ${c.entropy.toFixed(2)} nats`;
}

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

/** The fit's line under its progress bar: the shared words, or why a cached lens is being fitted again. */
export function fitLine(fit: { phase: 'selecting' | 'collecting' | 'solving' | 'checking'; done: number; total: number; refused?: string }): string {
  return fit.refused ? `The cached tuned lens was refused (${fit.refused}): fitting it again…` : lensFitWords(fit);
}
