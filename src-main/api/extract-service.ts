/** One prompt, one position or many, every layer × technique: the `extract` request, for every front. */
import { commitmentLayer } from '../sweep/commitment.ts';
import type { Engine } from '../engine/engine.ts';
import { type Issue, LogitscopeError, serializeError } from '../errors.ts';
import type { ResultStore } from '../store/result-store.ts';
import { rowsFromResults } from '../store/rows.ts';
import { judgeParity, PARITY_METHOD, paritySumsOf } from '../sweep/parity.ts';
import { CONVENTIONS, describeModel, describeTechniques, exportExample, type ExportRecord } from '../sweep/export-record.ts';
import { Extractor } from '../sweep/extract.ts';
import { type ExampleResult } from '../protocol/results.ts';
import { BUILT_IN_TECHNIQUES, resolveTechniques } from '../protocol/techniques.ts';
import type { ExtractCell, ExtractColumn, ExtractView, Parsed, Reply, TechniqueChoice } from './contract.ts';
import { checkAgainstModel, refuseIssues } from './model-check.ts';
import { techniqueSpecs } from './technique-choices.ts';
import { latestLensFor } from '../lens/resolve.ts';
import { CODE_VERSION } from './code-version.ts';
import { runModelOf } from './sweep-service.ts';
import { cellOf, promptTokens, techniqueView } from './views.ts';
import { readoutsOf } from '../sweep/readout.ts';

export function tokenizeOne(engine: Engine, p: Parsed<'extract.tokenize'>): Reply<'extract.tokenize'> {
  return { tokens: promptTokens(engine.tokenizer, engine.tokenize(p.text, { bos: p.bos })), nCtx: engine.config.nCtx, bosLength: engine.bosPlan(p.bos).id === null ? 0 : 1 };
}

type ExtractFields = Omit<Parsed<'extract'>, 'follow'>;

/**
 * Positions per engine call for a many-position extraction: bounds what one batch holds (a
 * source pass of this many prompts, and rows = positions × layers × techniques) on a long prompt.
 */
const POSITIONS_PER_BATCH = 64;

/** Which positions to read: one (default the last token), every one, or an inclusive range. */
function positionsOf(p: ExtractFields, n: number): number[] {
  const span = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const outside = (what: string, at: number, path: string) =>
    new LogitscopeError('position_out_of_range', `${what} ${at} is outside the prompt (${n} tokens: 0..${n - 1})`, path);
  if (p.positions === 'all') return span(0, n - 1);
  if (p.positions !== undefined) {
    if (p.positions.to >= n) throw outside('position', p.positions.to, 'positions.to');
    return span(p.positions.from, p.positions.to);
  }
  const position = p.position ?? n - 1;
  if (position >= n) throw outside('position', position, 'position');
  return [position];
}

/**
 * The extraction's own checks beside the model's (model-check.ts): every problem of the request at
 * once. Those that need the prompt's tokens (a position past its end) come after, from positionsOf.
 */
function requestIssues(p: ExtractFields, choices: readonly TechniqueChoice[]): Issue[] {
  const issues: Issue[] = [];
  // Lens settings describe a fit on a dataset's train slice, which one prompt does not have: refused
  // rather than silently read through another lens.
  const fitting = choices.findIndex((c) => c.id === 'tuned_lens' && c.lens !== undefined);
  if (fitting >= 0) {
    issues.push({
      code: 'argument_invalid',
      path: `techniques.${fitting}.lens`,
      message: 'extract reads through the tuned lens last fitted for this model and fits none itself: drop the lens settings here, and give them to a sweep (it fits that lens on its train slice)',
    });
  }
  if (p.position !== undefined && p.positions !== undefined) issues.push({ code: 'argument_invalid', path: 'positions', message: 'give either position or positions, not both' });
  if (p.positions !== undefined && p.positions !== 'all' && p.positions.from > p.positions.to) {
    issues.push({ code: 'argument_invalid', path: 'positions', message: `the range ${p.positions.from}-${p.positions.to} is empty: from must not exceed to` });
  }
  return issues;
}

/** The computation behind both the view and a saved extraction: checks first, then the extraction. */
async function compute(engine: Engine, p: ExtractFields & { follow?: number }, request: 'extract' | 'extract.save') {
  const { bos, k } = p;
  const choices = p.techniques ?? BUILT_IN_TECHNIQUES.map((t) => ({ id: t.id as 'logit_lens' | 'patchscope' | 'logitscope' }));
  refuseIssues(request, [...checkAgainstModel(engine.config, { layers: p.layers, techniques: choices }), ...requestIssues(p, choices)]);
  // The engine refuses an empty or over-long prompt with the field `text`.
  const tokens = engine.tokenize(p.text, { bos });
  const positions = positionsOf(p, tokens.length);
  // One prompt has no train slice: a tuned lens reads through the lens last fitted for this model.
  const techniques = latestLensFor(engine, resolveTechniques(techniqueSpecs(choices), engine.promptTokenizer(bos)));
  const layers = p.layers ?? Array.from({ length: engine.config.nLayers }, (_, l) => l);
  // Each position is its own example, as in a sweep: the same fast path, one source pass per batch.
  const extractor = new Extractor(engine);
  const examples: ExampleResult[] = [];
  for (let i = 0; i < positions.length; i += POSITIONS_PER_BATCH) {
    const batch = positions.slice(i, i + POSITIONS_PER_BATCH).map((position) => ({ tokens, position }));
    examples.push(...(await extractor.extract({ examples: batch, techniques, layers, k, ...(p.follow !== undefined && { track: batch.map(() => p.follow!) }) })));
  }
  const parity = judgeParity({
    techniques,
    nLayers: engine.config.nLayers,
    layers,
    computeDtype: engine.info.computeDtype,
    sums: paritySumsOf(examples.flatMap(readoutsOf), engine.config.nLayers - 1),
  });
  return { bos, tokens, positions, techniques, layers, k, examples, parity };
}

export async function extractOne(engine: Engine, p: Parsed<'extract'>): Promise<ExtractView> {
  const { bos, tokens, techniques, layers, examples, parity } = await compute(engine, p, 'extract');
  const text = (id: number) => engine.tokenizer.tokenString(id);
  const paddingFrom = engine.tokenizer.vocabSize;
  const record: ExportRecord = {
    model: describeModel(engine.info, engine.tokenizer),
    techniques: describeTechniques(techniques),
    conventions: CONVENTIONS,
    bos,
    parity: { ...parity, method: PARITY_METHOD },
    examples: examples.map((e) => exportExample(e, readoutsOf(e), paddingFrom)),
  };
  const follow = p.follow;
  const column = (e: ExampleResult): ExtractColumn => {
    const cells: ExtractCell[] = readoutsOf(e).map((r) => cellOf(r, text));
    const commitsAt = Object.fromEntries(techniques.map((t) => [t.id, commitmentLayer(cells.filter((c) => c.technique === t.id))]));
    return {
      position: e.position,
      reference: { id: e.reference_top1, text: text(e.reference_top1) },
      commitsAt,
      cells,
    };
  };
  const columns = examples.map(column);
  const last = columns[columns.length - 1];
  return {
    tokens: promptTokens(engine.tokenizer, tokens),
    position: last.position,
    bos,
    reference: last.reference,
    commitsAt: last.commitsAt,
    ...((p.positions !== undefined) && { columns }),
    paddingFrom,
    dVocab: engine.config.dVocab,
    parity,
    techniques: techniques.map((t) => {
      const v = techniqueView(t);
      return { id: t.id, ...(v.prompt !== undefined && { prompt: v.prompt }), ...(v.targetLayer !== undefined && { targetLayer: v.targetLayer }) };
    }),
    layers,
    cells: last.cells,
    ...(follow !== undefined && { follow: { id: follow, text: text(follow) } }),
    record,
  };
}

/** Where a saved example says it came from, in place of a dataset file. */
export const TYPED_SOURCE = 'typed in the Extract view';

/**
 * One typed prompt stored as a completed one-example run, so it is listed, inspected and exported
 * like any sweep. It is computed here again rather than taken from the renderer: only numbers this
 * process made go into the results cache.
 */
export async function saveExtraction(engine: Engine, store: ResultStore, p: Parsed<'extract.save'>): Promise<{ runId: string }> {
  const started = performance.now();
  const { bos, tokens, positions, techniques, layers, k, examples } = await compute(engine, p, 'extract.save');
  const quoted = p.text.length > 40 ? `${p.text.slice(0, 39)}…` : p.text;
  const where = positions.length === 1 ? `${positions[0]}` : `${positions[0]}-${positions[positions.length - 1]}`;
  const runId = store.createRun({
    name: p.name || `extract: "${quoted}" @ ${where}`,
    model: runModelOf(engine),
    files: [],
    datasetStats: { source: TYPED_SOURCE },
    // No dataset was sliced: the protocol records only what applies (BOS, one example per position).
    protocol: { preset: 'logitscope', poolStart: 0, poolEnd: 1, filter: {}, shuffleSeed: null, evalStart: 0, evalEnd: 1, limit: positions.length, bos, positionSeed: 0 },
    techniques,
    layers,
    k,
    strategy: 'fast',
    codeVersion: CODE_VERSION,
    examplesPlanned: positions.length,
  });
  try {
    store.setRunExamples(runId, positions.map((position, ordinal) => ({ ordinal, recordIndex: 0, source: TYPED_SOURCE, text: p.text, tokens, position })));
    store.saveBatch(runId, rowsFromResults(examples, techniques));
    store.finishRun(runId, { status: 'completed', timings: { wallMs: performance.now() - started } });
  } catch (e) {
    store.finishRun(runId, { status: 'failed', error: serializeError(e) });
    throw e;
  }
  return { runId };
}
