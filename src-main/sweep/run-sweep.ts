import { assertLayer, type Engine } from '../engine/engine.ts';
import { LogitscopeError } from '../errors.ts';
import { batchLimits, sweepBatches } from './batching.ts';
import { Extractor, extractNaive } from './extract.ts';
import type { ExampleResult, LayerResult } from '../protocol/results.ts';
import type { LayerSummary, Strategy, SweepExample } from '../protocol/spec.ts';
import { summarize } from './intervals.ts';
import type { ResolvedTechnique } from '../protocol/techniques.ts';

export interface SweepPlan {
  examples: SweepExample[];
  techniques: ResolvedTechnique[];
  layers: number[];
  k: number;
  strategy: Strategy;
}

/**
 * Where finished results go and come back from (the SQLite cache). `lookup` returns what is already
 * known for some examples (possibly only some techniques or layers); the sweep computes the rest.
 */
export interface SweepCache {
  lookup(ordinals: number[]): Promise<Map<number, ExampleResult>> | Map<number, ExampleResult>;
  /** Called once per finished batch with only the newly computed rows; the sweep waits for it. */
  save(batch: { ordinal: number; result: ExampleResult; computed: LayerResult[] }[]): Promise<void> | void;
}

export interface SweepProgress {
  examplesDone: number;
  examplesTotal: number;
  /** Of the examples done, how many came entirely from the cache. */
  examplesFromCache: number;
  /** Computed examples per second (cache hits excluded), and the estimated seconds left; null until known. */
  throughput: number | null;
  etaSeconds: number | null;
  summary: LayerSummary[];
}

export interface SweepOutcome {
  status: 'completed' | 'cancelled';
  /** In example order; undefined where the sweep was cancelled before reaching the example. */
  results: (ExampleResult | undefined)[];
  summary: LayerSummary[];
  timings: { computeSeconds: number; examplesComputed: number };
}

/**
 * Runs a sweep batch by batch. After each batch the finished results are handed to the cache and
 * a progress event is emitted; cancelling (the signal) stops before the next engine call and
 * keeps everything finished so far.
 */
export async function runSweep(
  engine: Engine,
  plan: SweepPlan,
  opts: {
    signal?: AbortSignal;
    cache?: SweepCache;
    onProgress?(p: SweepProgress): void;
    budgetBytes?: number;
    maxBatchExamples?: number;
    /** false: rows without the per-row measures (kl, rank, entropy null), only for bench/sweep-bench.ts's cost comparison. */
    measures?: boolean;
  } = {},
): Promise<SweepOutcome> {
  validatePlan(engine, plan);
  const { examples, layers } = plan;
  const extractor = new Extractor(engine);
  const longest = examples.reduce((m, e) => Math.max(m, e.position + 1), 0);
  const limits = batchLimits(engine.config, { layers: layers.length, budgetBytes: opts.budgetBytes, longest });
  if (opts.maxBatchExamples) limits.examples = Math.min(limits.examples, opts.maxBatchExamples);
  extractor.maxUnembedRows = limits.unembedRows;
  extractor.measures = opts.measures ?? true;
  const lengths = examples.map((e, ordinal) => ({ ordinal, length: e.position + 1 }));

  const results: (ExampleResult | undefined)[] = new Array(examples.length);
  let done = 0;
  let fromCache = 0;
  let computed = 0;
  let computeSeconds = 0;
  const finished = () => results.filter((r): r is ExampleResult => r !== undefined);
  for (const batch of sweepBatches(lengths, limits)) {
    if (opts.signal?.aborted) break;
    const known = (await opts.cache?.lookup(batch)) ?? new Map<number, ExampleResult>();
    const started = performance.now();
    let fresh: Map<number, ExampleResult>;
    try {
      fresh = await computeMissing(engine, extractor, plan, batch, known, opts.signal);
    } catch (e) {
      if (e instanceof LogitscopeError && e.code === 'cancelled') break;
      throw e;
    }
    const batchComputed = fresh.size;
    if (batchComputed > 0) {
      computeSeconds += (performance.now() - started) / 1000;
      computed += batchComputed;
    }
    const saved = batch.map((ordinal) => {
      const result = assemble(plan, examples[ordinal], known.get(ordinal), fresh.get(ordinal));
      results[ordinal] = result;
      return { ordinal, result, computed: fresh.get(ordinal)?.layers ?? [] };
    });
    await opts.cache?.save(saved.filter((s) => s.computed.length > 0));
    done += batch.length;
    fromCache += batch.length - batchComputed;
    const throughput = computed > 0 ? computed / computeSeconds : null;
    opts.onProgress?.({
      examplesDone: done,
      examplesTotal: examples.length,
      examplesFromCache: fromCache,
      throughput,
      etaSeconds: throughput ? (examples.length - done) / throughput : null,
      summary: summarize(finished()),
    });
  }
  return {
    status: done === examples.length ? 'completed' : 'cancelled',
    results,
    summary: summarize(finished()),
    timings: { computeSeconds, examplesComputed: computed },
  };
}

/** The (technique, layer) rows each example of the batch still lacks, computed together where they lack the same ones. */
async function computeMissing(
  engine: Engine,
  extractor: Extractor,
  plan: SweepPlan,
  batch: number[],
  known: Map<number, ExampleResult>,
  signal: AbortSignal | undefined,
): Promise<Map<number, ExampleResult>> {
  // Examples lacking exactly the same (technique, layers) rows are computed together, sharing one source pass.
  const groups = new Map<string, { ordinals: number[]; techniques: ResolvedTechnique[]; layersByTechnique: Record<string, number[]> }>();
  for (const ordinal of batch) {
    const have = new Set((known.get(ordinal)?.layers ?? []).map((r) => `${r.technique}|${r.layer}`));
    const layersByTechnique: Record<string, number[]> = {};
    for (const t of plan.techniques) {
      const missing = plan.layers.filter((l) => !have.has(`${t.id}|${l}`));
      if (missing.length > 0) layersByTechnique[t.id] = missing;
    }
    const techniques = plan.techniques.filter((t) => layersByTechnique[t.id]);
    if (techniques.length === 0) continue;
    const signature = JSON.stringify(layersByTechnique);
    const g = groups.get(signature) ?? { ordinals: [], techniques, layersByTechnique };
    g.ordinals.push(ordinal);
    groups.set(signature, g);
  }
  const fresh = new Map<number, ExampleResult>();
  for (const g of groups.values()) {
    if (signal?.aborted) throw new LogitscopeError('cancelled', 'the sweep was cancelled');
    const examples = g.ordinals.map((o) => plan.examples[o]);
    const names = examples.map((e, i) => `example ${g.ordinals[i]} of the sweep (record ${e.recordIndex}, position ${e.position})`);
    // Examples that follow a record token (track 'record') all do: the plan's tokens were checked (sweep/track.ts).
    const track = examples.every((e) => e.track !== undefined) ? examples.map((e) => e.track!) : undefined;
    const options = { examples, names, techniques: g.techniques, layers: plan.layers, layersByTechnique: g.layersByTechnique, k: plan.k, measures: extractor.measures, ...(track && { track }) };
    const out = plan.strategy === 'fast' ? await extractor.extract(options) : await extractNaive(engine, options);
    out.forEach((r, i) => fresh.set(g.ordinals[i], r));
  }
  if (signal?.aborted) throw new LogitscopeError('cancelled', 'the sweep was cancelled');
  return fresh;
}

/** One example's result in the plan's order (technique, then layer), from cached and fresh rows. */
function assemble(plan: SweepPlan, example: SweepExample, known: ExampleResult | undefined, fresh: ExampleResult | undefined): ExampleResult {
  const rows = new Map<string, LayerResult>();
  for (const r of [...(known?.layers ?? []), ...(fresh?.layers ?? [])]) rows.set(`${r.technique}|${r.layer}`, r);
  const layers: LayerResult[] = [];
  for (const t of plan.techniques) for (const l of plan.layers) layers.push(rows.get(`${t.id}|${l}`)!);
  const referenceTop1 = (fresh ?? known)!.reference_top1;
  return { tokens: example.tokens, position: example.position, reference_top1: referenceTop1, layers };
}

/** The plan's own invariants; a request's layers were checked against the model before it was made (api/model-check.ts). */
function validatePlan(engine: Engine, plan: SweepPlan): void {
  if (plan.examples.length === 0) throw new LogitscopeError('slice_empty', 'the sweep has no examples', 'examples');
  if (plan.techniques.length === 0) throw new LogitscopeError('argument_invalid', 'choose at least one technique', 'techniques');
  if (plan.layers.length === 0) throw new LogitscopeError('argument_invalid', 'choose at least one layer', 'layers');
  plan.layers.forEach((l) => assertLayer(engine.config, l, 'layers'));
  if (new Set(plan.layers).size !== plan.layers.length) throw new LogitscopeError('argument_invalid', 'a layer is listed twice', 'layers');
}
