import type { ModelInfo } from '../engine/engine.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';
import type { ExampleResult } from './extract.ts';
import type { Interval, LayerSummary } from './spec.ts';
import { residHook } from '../hooks.ts';
import { INTERVAL_METHODS } from './summary.ts';
import type { ResolvedTechnique } from './techniques.ts';
import { describeLens, type LensRecord } from '../lens/lens.ts';

/** The export record every export writes (JSON); field names are fixed by the engine issue. */
export interface ExportRecord {
  model: Record<string, unknown>;
  /** `lens`: the tuned lens's record (settings and key) and a one-line description; null before it was fitted. */
  techniques: Record<string, { prompt?: string; prompt_tokens?: number[]; target_layer?: 'same' | number; lens?: (LensRecord & { description: string }) | null }>;
  conventions: typeof CONVENTIONS;
  examples: ExampleResult[];
  [extra: string]: unknown;
}

/** What the numbers mean, written into every export so a file read alone is unambiguous. */
export const CONVENTIONS = {
  layer: 'output of block l (blocks.{l}.hook_resid_post, HF hidden_states[l+1]); -1 = embeddings (hook_embed)',
  surprisal: '-ln p_technique(reference_top1), nats (the seed convention)',
  surprisal_paper: '-ln p_model(top1) at the source position, nats (the Patchscopes paper convention)',
  argmax_over: 'all vocab_size rows of the unembedding, padding rows included (as TransformerLens and the seed)',
  precision_at_1: 'top1 == reference_top1',
  padding_ids: 'per layer, the top_k ids >= model.tokenizer_vocab_size: rows of the head the tokenizer never produces (GPT-J pads its 50257-token vocabulary to 50400 rows, Pythia 50277 to 50304, Qwen2 151646 to 151936; tokenizer_vocab_size counts the added tokens text encodes to, not GPT-J\'s <|extratoken_N|> names of padding rows)',
} as const;

/**
 * `tokenizer` gives tokenizer_vocab_size, from which exports mark padding ids in a top-k, and the
 * tokenizer's style and BOS. `repo` and `revision` are the hub snapshot the folder is, else null.
 */
export function describeModel(info: ModelInfo, tokenizer?: Pick<Tokenizer, 'vocabSize' | 'style' | 'bos'>): Record<string, unknown> {
  return {
    family: info.config.family,
    model_type: info.config.modelType,
    repo: info.origin?.repo ?? null,
    revision: info.origin?.revision ?? null,
    ...(tokenizer && { tokenizer_vocab_size: tokenizer.vocabSize, tokenizer_style: tokenizer.style, bos_token: tokenizer.bos }),
    path: info.modelDir,
    identity: info.identity,
    format: info.format,
    weight_dtype: info.weightDtype,
    compute_dtype: info.computeDtype,
    device: info.device,
    config: info.config,
  };
}

export function describeTechniques(techniques: ResolvedTechnique[]): ExportRecord['techniques'] {
  return Object.fromEntries(
    techniques.map((t) => [
      t.id,
      t.kind === 'logit_lens'
        ? {}
        : t.kind === 'tuned_lens'
          ? { lens: t.lens ? { description: describeLens(t.lens), ...t.lens } : null }
          : { prompt: t.prompt, prompt_tokens: t.promptTokens, target_layer: t.targetLayer.kind === 'same' ? ('same' as const) : t.targetLayer.layer },
    ]),
  );
}

/** Per-layer means in the export's naming: snake_case, CIs spelled out and their method named. */
export function exportSummary(summary: LayerSummary[]) {
  const interval = (i: Interval) => ({ mean: i.mean, ci95_low: i.low, ci95_high: i.high });
  return {
    ci_method: INTERVAL_METHODS,
    rows: summary.map((s) => ({
      technique: s.technique,
      layer: s.layer,
      hook: residHook(s.layer),
      n: s.n,
      precision_at_1: interval(s.precision),
      surprisal: interval(s.surprisal),
      surprisal_paper: interval(s.surprisalPaper),
    })),
  };
}

/** The top-k ids that are padding rows (CONVENTIONS.padding_ids). */
export function paddingIds(ids: readonly number[], paddingFrom: number): number[] {
  return ids.filter((id) => id >= paddingFrom);
}
