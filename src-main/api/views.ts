/**
 * What the API hands out about the model, runs and examples: built from the engine's and the
 * store's own types in one place, so the views never drift from what is stored.
 */
import { reproduceCommand } from './command.ts';
import type { Engine } from '../engine/engine.ts';
import type { GptjTokenizer } from '../engine/tokenizer.ts';
import { LogitscopeError } from '../errors.ts';
import type { ResultStore, StoredExample } from '../store/result-store.ts';
import type { LayerResult } from '../sweep/extract.ts';
import type { ResolvedTechnique } from '../sweep/techniques.ts';
import { describeLens } from '../lens/lens.ts';
import { checkFingerprints, recordedFingerprints } from '../data/fingerprint.ts';
import type { ExampleListView, ExampleView, ModelView, RunView } from './contract.ts';
import type { ExampleQuery } from '../store/example-query.ts';
import { runParity } from '../store/parity.ts';

export function modelView(e: Engine, loadSeconds: number): ModelView {
  const { nLayers, dModel, nHeads, dHead, dMlp, nCtx, rotaryDim, dVocab } = e.config;
  return {
    dir: e.info.modelDir,
    identity: e.info.identity,
    format: e.info.format,
    weightDtype: e.info.weightDtype,
    computeDtype: e.info.computeDtype,
    device: e.info.device,
    ...(e.info.fallbackReason && { fallbackReason: e.info.fallbackReason }),
    config: { nLayers, dModel, nHeads, dHead, dMlp, nCtx, rotaryDim, dVocab },
    loadSeconds,
  };
}

/** A technique's prompt and target layer rule as views and exports show them; {} for the logit lens. */
export function techniqueView(t: ResolvedTechnique): { prompt?: string; promptTokens?: number[]; targetLayer?: 'same' | number; lens?: string } {
  if (t.kind === 'logit_lens') return {};
  if (t.kind === 'tuned_lens') return t.lens ? { lens: describeLens(t.lens) } : {};
  return { prompt: t.prompt, promptTokens: t.promptTokens, targetLayer: t.targetLayer.kind === 'same' ? 'same' : t.targetLayer.layer };
}

/** How runs.diff's intervals are computed, said with every reply (and in figure captions). */
export const PAIRED_METHOD =
  'b − a per example over the examples both runs computed; mean with a paired Student t interval, 95%: mean ± t(0.975, n−1)·sd/√n of the differences';

export function runView(store: ResultStore, runId: string, cacheRoot?: string): RunView {
  const run = store.getRun(runId);
  const { id, name, status, createdAt, modelPath, files, techniques, layers, examplesPlanned, examplesDone, protocol, strategy, error, notes, tags } = run;
  return {
    id,
    name,
    notes,
    tags,
    status,
    createdAt,
    modelPath,
    device: (run.model.device as RunView['device'] | undefined) ?? 'cpu',
    computeDtype: (run.model.compute_dtype as RunView['computeDtype'] | undefined) ?? 'float32',
    files,
    techniques,
    layers,
    examplesPlanned,
    examplesDone,
    protocol,
    strategy,
    dataset: run.dataset,
    techniquePrompts: Object.fromEntries(run.resolvedTechniques.map((t) => [t.id, techniqueView(t)])),
    summary: store.summary(runId),
    parity: runParity(store, run),
    error,
    ownsRows: run.ownsRows,
    datasetCheck: checkFingerprints(recordedFingerprints(run.dataset), cacheRoot),
    command: reproduceCommand(run),
  };
}

/** A prompt's tokens with their text, shown in context: tokens that together form a character (CJK, emoji) show it. */
export function promptTokens(tokenizer: GptjTokenizer, ids: readonly number[]): { id: number; text: string }[] {
  const shown = tokenizer.tokenStrings(ids);
  return ids.map((id, i) => ({ id, text: shown[i] }));
}

/** The inspector's grid cells of one example: every technique × layer with its top-k as text. */
export function cellsOf(layers: readonly LayerResult[], reference: number, text: (id: number) => string): ExampleView['cells'] {
  return layers.map((r) => ({
    technique: r.technique,
    layer: r.layer,
    top1: r.top1,
    correct: r.top1 === reference,
    surprisal: r.surprisal,
    surprisalPaper: r.surprisal_paper,
    topK: r.top_k.ids.map((id, i) => ({ id, text: text(id), prob: r.top_k.probs[i] })),
    kl: r.kl,
    rank: r.rank,
    entropy: r.entropy,
  }));
}

export function exampleView(store: ResultStore, runId: string, ordinal: number, tokenizer: GptjTokenizer): ExampleView {
  // One page of one example, starting at it: the inspector reads only what it shows.
  const found: StoredExample | void = store.iterateResults(runId, { fromOrdinal: ordinal, pageSize: 1 }).next().value;
  if (!found || found.example.ordinal !== ordinal) throw new LogitscopeError('argument_invalid', `run ${runId} has no finished example ${ordinal}`, 'ordinal');
  const text = (id: number) => tokenizer.tokenString(id);
  const { example, result } = found;
  return {
    ordinal,
    recordIndex: example.recordIndex,
    source: example.source,
    tokens: promptTokens(tokenizer, example.tokens),
    position: example.position,
    reference: { id: result.reference_top1, text: text(result.reference_top1) },
    paddingFrom: tokenizer.vocabSize,
    cells: cellsOf(result.layers, result.reference_top1, text),
  };
}

/** The finder's page with token ids as text. */
export function exampleListView(
  store: ResultStore,
  runId: string,
  query: ExampleQuery & { filter?: { referenceText?: string } },
  tokenizer: GptjTokenizer,
): ExampleListView {
  const { referenceText, ...filter } = query.filter ?? {};
  if (referenceText !== undefined) {
    const ids = tokenizer.encode(referenceText);
    if (ids.length !== 1) throw new LogitscopeError('argument_invalid', `"${referenceText}" is ${ids.length} tokens, not one; a reference is one token`, 'filter.referenceText');
    if (filter.referenceToken !== undefined && filter.referenceToken !== ids[0]) throw new LogitscopeError('argument_invalid', 'give the reference token as an id or as text, not both', 'filter.referenceText');
    filter.referenceToken = ids[0];
  }
  const found = store.findExamples(runId, { ...query, filter });
  const token = (id: number) => ({ id, text: tokenizer.tokenString(id) });
  return {
    cell: found.cell,
    total: found.total,
    offset: query.offset,
    rows: found.rows.map((r) => ({
      ordinal: r.ordinal,
      recordIndex: r.recordIndex,
      ...(r.source !== undefined && { source: r.source }),
      reference: token(r.referenceTop1),
      top1: token(r.top1),
      correct: r.correct,
      surprisal: r.surprisal,
      surprisalPaper: r.surprisalPaper,
      layers: r.layers.map(({ layer, correct, surprisal }) => ({ layer, correct, surprisal })),
    })),
  };
}

/**
 * A run id from what a user typed: the whole id, or any unique prefix of it (`runs list` prints
 * the first 8 characters). One resolver for every request that names a run.
 */
export function resolveRunId(store: ResultStore, typed: string, field = 'runId'): string {
  const matches = store.runIdsStartingWith(typed);
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) throw new LogitscopeError('run_not_found', `no run with id "${typed}" in ${store.file}`, field);
  throw new LogitscopeError('argument_invalid', `"${typed}" matches more than one run; give more of the id`, field);
}
