/**
 * The sweep settings, shared by the Sweep panel and the empty results pane (whose "Run the demo"
 * runs them too), and the one function that turns them into a request.
 */
import type { SweepRequest, TechniqueChoice } from '../../src-main/api/contract.ts';
import { parseLayerList } from '../../src-main/api/parse.ts';
import { LogitscopeError } from '../../src-main/errors.ts';
import type { Strategy } from '../../src-main/protocol/spec.ts';
import { api } from './api.ts';
import { customChoices, type CustomPrompt } from './custom-prompts.ts';
import { dataset, datasetChoice } from './dataset-form.svelte.ts';
import { lab, startSweep } from './state.svelte.ts';

export const BUILT_INS = [
  { id: 'logit_lens', label: 'logit lens' },
  { id: 'patchscope', label: 'token-identity patchscope' },
  { id: 'logitscope', label: 'logitscope' },
  // Off by default: its first use per model and train slice fits the lens before the sweep starts.
  { id: 'tuned_lens', label: 'affine tuned lens (fitted on a train slice, then cached)' },
] as const;

export const sweepForm = $state({
  chosen: { logit_lens: true, patchscope: true, logitscope: true, tuned_lens: false } as Record<string, boolean>,
  customs: [] as CustomPrompt[],
  layers: 'all',
  seed: 0 as number | null,
  k: 10 as number | null,
  strategy: 'fast' as Strategy,
  /** 'record': every example also follows its record's own `track` token (a jsonl field or parquet column). */
  track: 'reference' as 'reference' | 'record',
  name: '',
  /** Verification runs: compute every row afresh instead of reading earlier runs' rows. */
  recompute: false,
});

/** Why "Run sweep" cannot be pressed now, or null when it can. */
export function runBlocker(): string | null {
  if (lab.modelLoading) return 'A model is loading; the sweep can start once it is loaded.';
  if (!lab.model) return 'Load a model first (Model panel), or run the demo.';
  if (lab.activeRunId !== null || lab.preparing !== null) return 'A sweep is running; cancel it or wait for it to finish.';
  return null;
}

/** The request, or a thrown error naming the field, checked before anything is sent. */
export function buildRequest(): SweepRequest {
  if (!lab.model) throw new LogitscopeError('model_not_loaded', 'Load a model first (Model panel).', 'model');
  const f = sweepForm;
  const techniques: TechniqueChoice[] = BUILT_INS.filter((t) => f.chosen[t.id]).map((t) => ({ id: t.id }));
  techniques.push(...customChoices(f.customs, (i) => `Custom patchscope ${i + 1}`, (i) => `custom ${i + 1}`));
  if (techniques.length === 0) throw new LogitscopeError('argument_invalid', 'Nothing to run: pick at least one technique or add a custom patchscope.', 'techniques');
  const layerList = parseLayerList(f.layers, { nLayers: lab.model.config.nLayers });
  if (layerList?.length === 0) throw new LogitscopeError('argument_invalid', 'Pick at least one layer.', 'layers');
  const { files, preset, overrides } = datasetChoice(f.seed ?? undefined);
  return {
    files, preset, overrides, techniques, layers: layerList, k: f.k ?? undefined, strategy: f.strategy,
    name: f.name.trim() || undefined, ...(f.recompute && { recompute: true }), ...(f.track === 'record' && { track: 'record' }),
  };
}

/** What the demo does, said where it is offered. */
export const DEMO_WHAT =
  'loads the built-in 6-layer demo GPT-J and sweeps 300 examples of its held-out text with the chosen techniques (about 15 s on a laptop CPU), drawing the curves as it goes';

/** First start: load the built-in demo and sweep its held-out text, as `logitscope sweep --demo` does. */
export async function runDemo(): Promise<void> {
  const demo = lab.info?.demo;
  if (!demo) throw new LogitscopeError('argument_invalid', 'This build has no built-in demo model.', 'model');
  if (lab.model?.dir !== demo.modelDir) {
    lab.modelLoading = true;
    try {
      lab.model = await api.call('model.load', { dir: demo.modelDir, allowCpuFallback: true });
    } finally {
      lab.modelLoading = false;
    }
  }
  dataset.files = demo.dataFile;
  // The demo's example count is the demo's alone: the form's Limit (empty or the user's) stays as it is.
  const request = buildRequest();
  await startSweep({ ...request, overrides: { ...request.overrides, limit: request.overrides?.limit ?? demo.limit } });
}
