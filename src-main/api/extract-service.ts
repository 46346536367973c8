/** One prompt, one position, every layer × technique: the `extract` request, for every front. */
import type { Engine } from '../engine/engine.ts';
import { LogitscopeError, serializeError } from '../errors.ts';
import { modelKey } from '../store/keys.ts';
import type { ResultStore } from '../store/result-store.ts';
import { rowsFromResults } from '../store/rows.ts';
import { CONVENTIONS, describeModel, describeTechniques, type ExportRecord } from '../sweep/export-record.ts';
import { Extractor } from '../sweep/extract.ts';
import { BUILT_IN_TECHNIQUES, resolveTechniques } from '../sweep/techniques.ts';
import type { ExtractView, Payload, Reply } from './contract.ts';
import { checkLayers, techniqueSpecs } from './techniques.ts';
import { CODE_VERSION } from './sweep-service.ts';
import { cellsOf, techniqueView } from './views.ts';

export function tokenizeOne(engine: Engine, p: Payload<'extract.tokenize'>): Reply<'extract.tokenize'> {
  const text = (id: number) => engine.tokenizer.tokenString(id);
  return { tokens: engine.tokenize(p.text, { bos: p.bos ?? false }).map((id) => ({ id, text: text(id) })), nCtx: engine.config.nCtx };
}

type ExtractFields = Omit<Payload<'extract'>, 'follow'>;

/** The computation behind both the view and a saved example: checks first, then one extraction. */
async function compute(engine: Engine, p: ExtractFields) {
  const bos = p.bos ?? false;
  const choices = p.techniques ?? BUILT_IN_TECHNIQUES.map((t) => ({ id: t.id as 'logit_lens' | 'patchscope' | 'logitscope' }));
  checkLayers(engine, p.layers, choices);
  // The engine refuses an empty or over-long prompt with the field `text`.
  const tokens = engine.tokenize(p.text, { bos });
  const position = p.position ?? tokens.length - 1;
  if (position >= tokens.length) {
    throw new LogitscopeError('position_out_of_range', `position ${position} is outside the prompt (${tokens.length} tokens: 0..${tokens.length - 1})`, 'position');
  }
  const techniques = resolveTechniques(techniqueSpecs(choices), (t) => engine.tokenize(t, { bos }));
  const layers = p.layers ?? Array.from({ length: engine.config.nLayers }, (_, l) => l);
  const k = p.k ?? 5;
  const [example] = await new Extractor(engine).extract({ examples: [{ tokens, position }], techniques, layers, k });
  return { bos, tokens, position, techniques, layers, k, example };
}

export async function extractOne(engine: Engine, p: Payload<'extract'>): Promise<ExtractView> {
  const { bos, tokens, position, techniques, layers, example } = await compute(engine, p);
  const text = (id: number) => engine.tokenizer.tokenString(id);
  const record: ExportRecord = {
    model: describeModel(engine.info),
    techniques: describeTechniques(techniques),
    conventions: CONVENTIONS,
    bos,
    examples: [example],
  };
  const cells = cellsOf(example.layers, example.reference_top1, text);
  const follow = p.follow;
  return {
    tokens: tokens.map((id) => ({ id, text: text(id) })),
    position,
    bos,
    reference: { id: example.reference_top1, text: text(example.reference_top1) },
    techniques: techniques.map((t) => {
      const v = techniqueView(t);
      return { id: t.id, ...(v.prompt !== undefined && { prompt: v.prompt }), ...(v.targetLayer !== undefined && { targetLayer: v.targetLayer }) };
    }),
    layers,
    cells: follow === undefined ? cells : cells.map((c) => ({ ...c, followProb: c.topK.find((t) => t.id === follow)?.prob ?? null })),
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
export async function saveExtraction(engine: Engine, store: ResultStore, p: Payload<'extract.save'>): Promise<{ runId: string }> {
  const started = performance.now();
  const { bos, tokens, position, techniques, layers, k, example } = await compute(engine, p);
  const quoted = p.text.length > 40 ? `${p.text.slice(0, 39)}…` : p.text;
  const runId = store.createRun({
    name: p.name || `extract: "${quoted}" @ ${position}`,
    model: { key: modelKey(engine.info), path: engine.info.modelDir, info: describeModel(engine.info) },
    files: [],
    datasetStats: { source: TYPED_SOURCE },
    // No dataset was sliced: the protocol records only what applies (BOS, one example).
    protocol: { preset: 'logitscope', poolStart: 0, poolEnd: 1, filter: {}, shuffleSeed: null, evalStart: 0, evalEnd: 1, limit: 1, bos, positionSeed: 0 },
    techniques,
    layers,
    k,
    strategy: 'fast',
    codeVersion: CODE_VERSION,
    examplesPlanned: 1,
  });
  try {
    store.setRunExamples(runId, [{ ordinal: 0, recordIndex: 0, source: TYPED_SOURCE, text: p.text, tokens, position }]);
    store.saveBatch(runId, rowsFromResults([example], techniques));
    store.finishRun(runId, { status: 'completed', timings: { wallMs: performance.now() - started } });
  } catch (e) {
    store.finishRun(runId, { status: 'failed', error: serializeError(e) });
    throw e;
  }
  return { runId };
}
