import type { ModelInfo } from '../engine/engine.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';
import type { ExampleResult } from '../protocol/results.ts';
import { exampleResultOf, type Readout } from './readout.ts';
import type { Interval, LayerSummary } from '../protocol/spec.ts';
import { residHook } from '../protocol/hooks.ts';
import { INTERVAL_METHODS } from './intervals.ts';
import type { ResolvedTechnique } from '../protocol/techniques.ts';
import { describeLens } from '../lens/lens.ts';
import type { LensRecord } from '../protocol/lens-settings.ts';

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
  kl: 'KL(p_model || p_technique) = sum over all vocab_size ids of p_model(i) * (ln p_model(i) - ln p_technique(i)), nats; p_model is the model\'s own next-token distribution at the source position (its final layer); null = not measured (a row stored before the measures existed)',
  rank: 'the number of ids whose technique logit is strictly greater than that of reference_top1 (0-based: 0 = the technique\'s top-1; tied ids share the better rank); null = not measured',
  entropy: '-sum over all vocab_size ids of p_technique(i) * ln p_technique(i), nats; null = not measured',
  tracked: 'with a sweep of track "record": the token each example follows (its record\'s "track" field) as tracked.id, and per layer its exact tracked.logprob = ln p_technique(id) over all vocab_size ids and tracked.rank = the number of ids whose technique logit is strictly greater (0-based); in tables track_token, track_logprob, track_rank, empty where the run follows no record token',
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

/** A technique's prompt and target layer rule, or the tuned lens in one line, as views and exports show them; {} for the logit lens. */
export function describeTechnique(t: ResolvedTechnique): { prompt?: string; promptTokens?: number[]; targetLayer?: 'same' | number; lens?: string } {
  if (t.kind === 'logit_lens') return {};
  if (t.kind === 'tuned_lens') return t.lens ? { lens: describeLens(t.lens) } : {};
  return { prompt: t.prompt, promptTokens: t.promptTokens, targetLayer: t.targetLayer.kind === 'same' ? 'same' : t.targetLayer.layer };
}

/** describeTechnique in the export's naming; the tuned lens's whole record beside its description. */
export function describeTechniques(techniques: ResolvedTechnique[]): ExportRecord['techniques'] {
  return Object.fromEntries(
    techniques.map((t) => {
      const d = describeTechnique(t);
      if (t.kind === 'tuned_lens') return [t.id, { lens: t.lens ? { description: d.lens!, ...t.lens } : null }];
      return [t.id, d.prompt === undefined ? {} : { prompt: d.prompt, prompt_tokens: d.promptTokens, target_layer: d.targetLayer }];
    }),
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
      n_measured: s.measures?.n ?? 0,
      kl: s.measures && interval(s.measures.kl),
      rank: s.measures && interval(s.measures.rank),
      entropy: s.measures && interval(s.measures.entropy),
      n_tracked: s.tracked?.n ?? 0,
      tracked_surprisal: s.tracked && interval(s.tracked.surprisal),
      tracked_rank: s.tracked && interval(s.tracked.rank),
    })),
  };
}

/** The top-k ids that are padding rows (CONVENTIONS.padding_ids). */
export function paddingIds(ids: readonly number[], paddingFrom: number): number[] {
  return ids.filter((id) => id >= paddingFrom);
}

/**
 * An example's readouts as the export record's example (the engine issue's snake_case), each layer
 * with its hook and, when the tokenizer's size is known (`paddingFrom`), its padding ids, and its
 * measures (kl, rank, entropy; null where not measured).
 */
export function exportExample(example: { tokens: number[]; position: number }, readouts: readonly Readout[], paddingFrom: number | undefined): ExampleResult {
  const { layers, ...rest } = exampleResultOf(example, readouts);
  return {
    ...rest,
    layers: layers.map(({ layer, ...l }) => ({
      layer,
      hook: residHook(layer),
      ...l,
      // Runs recorded before the tokenizer's size was have no padding_ids: unknown, not "none".
      ...(paddingFrom !== undefined && { padding_ids: paddingIds(l.top_k.ids, paddingFrom) }),
    })),
  };
}
