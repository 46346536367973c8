/**
 * What the API hands out about the model, runs and examples: built from the engine's and the
 * store's own types in one place, so the views never drift from what is stored.
 */
import { reproduceCommand } from './command.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';
import { memoryPlan, parameterCount } from '../engine/model-plan.ts';
import { LogitscopeError } from '../errors.ts';
import type { ResultStore, StoredExample } from '../store/result-store.ts';
import { isCorrect, type Readout } from '../sweep/readout.ts';
import type { ResolvedTechnique } from '../protocol/techniques.ts';
import { describeTechnique } from '../sweep/export-record.ts';
import { checkFingerprints, recordedFingerprints } from '../data/fingerprint.ts';
import type { ExampleListView, ExampleView, ModelProvenance, ModelView, Parsed, Reply, RunView } from './contract.ts';
import { previewSlice } from '../data/preview.ts';
import { resolveProtocol } from '../protocol/presets.ts';
import type { ExampleQuery } from '../store/example-query.ts';
import { runParity } from '../store/run-parity.ts';
import { commitmentLayer } from '../sweep/commitment.ts';

export function modelView(e: Engine, loadSeconds: number): ModelView {
  const { nLayers, dModel, nHeads, dHead, dMlp, nCtx, rotaryDim, dVocab } = e.config;
  return {
    dir: e.info.modelDir,
    family: e.config.family,
    modelType: e.config.modelType,
    parameters: parameterCount(e.config),
    memory: memoryPlan(e.config, e.info.computeDtype),
    origin: e.info.origin,
    tokenizer: { style: e.tokenizer.style, bos: e.tokenizer.bos?.text ?? null, bosOnRequest: e.tokenizer.tokenString(e.config.bosTokenId), vocabSize: e.tokenizer.vocabSize },
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

/** The provenance fields of a recorded model description (sweep/export-record.ts describeModel). */
function modelProvenanceOf(model: Record<string, unknown>): ModelProvenance {
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return { family: text(model.family), modelType: text(model.model_type), repo: text(model.repo), revision: text(model.revision) };
}

/** A technique's prompt, target layer rule or lens as views show them (export-record.ts describeTechnique). */
export const techniqueView = describeTechnique;

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
    codeVersion: run.codeVersion,
    device: (run.model.device as RunView['device'] | undefined) ?? 'cpu',
    model: modelProvenanceOf(run.model),
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
    track: run.spec?.track ?? 'reference',
    datasetCheck: checkFingerprints(recordedFingerprints(run.dataset), cacheRoot),
    command: reproduceCommand(run),
  };
}

/** A dataset's slice as the protocol would read it: counts and a few samples, before a sweep starts. */
export async function datasetPreview(p: Parsed<'dataset.preview'>): Promise<Reply<'dataset.preview'>> {
  const protocol = resolveProtocol(p.preset, p.overrides);
  const preview = await previewSlice(
    { files: p.files, start: protocol.poolStart, end: protocol.poolEnd, pileSetName: protocol.pileSetName, filter: protocol.filter },
    { sampleCount: p.sampleCount },
  );
  return {
    protocol,
    scanned: preview.scanned,
    passed: preview.passed,
    filteredOut: preview.filteredOut,
    skipped: { ...preview.skipped },
    filteredBy: { ...preview.filteredBy },
    capped: preview.capped,
    withTrack: preview.withTrack,
    samples: preview.samples.map((r) => ({ recordIndex: r.index, ...(r.source !== undefined && { source: r.source }), text: r.text, ...(r.track !== undefined && { track: r.track }) })),
  };
}

/** A prompt's tokens with their text, shown in context: tokens that together form a character (CJK, emoji) show it. */
export function promptTokens(tokenizer: Tokenizer, ids: readonly number[]): { id: number; text: string }[] {
  const shown = tokenizer.tokenStrings(ids);
  return ids.map((id, i) => ({ id, text: shown[i] }));
}

/** A readout as an inspector or extract grid cell, with its top-k as text. */
export function cellOf(r: Readout, text: (id: number) => string): ExampleView['cells'][number] {
  return {
    technique: r.technique,
    layer: r.layer,
    top1: r.top1,
    correct: isCorrect(r),
    surprisal: r.surprisal,
    surprisalPaper: r.surprisalPaper,
    topK: r.topK.ids.map((id, i) => ({ id, text: text(id), prob: r.topK.probs[i] })),
    kl: r.kl,
    rank: r.rank,
    entropy: r.entropy,
    // Exact, from the engine, in or out of the top-k: rank 1 = the cell's top-1.
    ...(r.tracked && { followProb: Math.exp(r.tracked.logprob), followRank: r.tracked.rank + 1 }),
  };
}

/** One finished example of a run with its readouts; an ordinal the run has not computed is refused. */
export function storedExample(store: ResultStore, runId: string, ordinal: number): StoredExample {
  // One page of one example, starting at it: the inspector reads only what it shows.
  const found: StoredExample | void = store.iterateResults(runId, { fromOrdinal: ordinal, pageSize: 1 }).next().value;
  if (!found || found.example.ordinal !== ordinal) throw new LogitscopeError('argument_invalid', `run ${runId} has no finished example ${ordinal}`, 'ordinal');
  return found;
}

export function exampleView(store: ResultStore, runId: string, ordinal: number, tokenizer: Tokenizer): ExampleView {
  const text = (id: number) => tokenizer.tokenString(id);
  const { example, readouts } = storedExample(store, runId, ordinal);
  const reference = readouts[0].referenceTop1;
  return {
    ordinal,
    recordIndex: example.recordIndex,
    ...(example.source !== undefined && { source: example.source }),
    tokens: promptTokens(tokenizer, example.tokens),
    position: example.position,
    reference: { id: reference, text: text(reference) },
    paddingFrom: tokenizer.vocabSize,
    cells: readouts.map((r) => cellOf(r, text)),
    ...(example.track !== undefined && { follow: { id: example.track, text: text(example.track) } }),
  };
}

/** The finder's page with token ids as text. */
export function exampleListView(
  store: ResultStore,
  runId: string,
  query: ExampleQuery & { filter?: { referenceText?: string } },
  tokenizer: Tokenizer,
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
      commitsAt: commitmentLayer(r.layers),
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
