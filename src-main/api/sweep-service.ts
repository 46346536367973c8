import fs from 'node:fs';
import type { SliceProgress } from '../data/slice.ts';
import type { Engine } from '../engine/engine.ts';
import type { FitProgress } from '../lens/fit.ts';
import { LogitscopeError, serializeError } from '../errors.ts';
import { modelKey } from '../store/keys.ts';
import type { ResultStore } from '../store/result-store.ts';
import { runSweepCache } from '../store/sweep-cache.ts';
import { describeModel } from '../sweep/export-record.ts';
import { prepareSweep, type PreparedSweep } from '../sweep/prepare.ts';
import { runSweep, type SweepOutcome, type SweepPlan, type SweepProgress } from '../sweep/run-sweep.ts';
import type { SweepSpec } from '../sweep/spec.ts';
import { type Shard, shardCache, shardOfRun, shardOrdinals } from '../scale/shard.ts';

/** The app's version, recorded with every run so results of different code can be told apart. */
export const CODE_VERSION: string = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export interface StoredSweepHooks {
  signal?: AbortSignal;
  onProgress?(p: SweepProgress): void;
  /** While the dataset slice is read, before the run exists (throttled by the reader). */
  onPreparing?(s: SliceProgress): void;
  /** While a tuned lens is fitted (selecting its train slice, collecting rows, solving), before the run exists. */
  onLensProgress?(p: FitProgress): void;
  /** Called as soon as the run exists in the store, before any compute. */
  onRunCreated?(runId: string, prepared: PreparedSweep): void;
  /** Memory budget for batch sizes (default: a share of free memory). */
  budgetBytes?: number;
  /** At most this many examples per batch (each batch is one transaction in the store). */
  maxBatchExamples?: number;
  /** Take nothing from the cache: compute every row again and store it over the old one (store/sweep-cache.ts). */
  recompute?: boolean;
  /** Compute only this shard's examples (scale/shard.ts); the run records every example of the slice and the shard. */
  shard?: Shard;
}

export interface StoredSweepResult {
  runId: string;
  prepared: PreparedSweep;
  outcome: SweepOutcome;
}

/**
 * A sweep recorded in the results cache: the run and its examples are stored before any compute,
 * every finished batch is written in its own transaction, and results any earlier run of the same
 * model computed are taken from the cache instead of being computed again.
 */
export async function runStoredSweep(engine: Engine, store: ResultStore, spec: SweepSpec, hooks: StoredSweepHooks & { name?: string } = {}): Promise<StoredSweepResult> {
  const prepared = await prepareSweep(engine, spec, { signal: hooks.signal, onProgress: hooks.onPreparing, onLensProgress: hooks.onLensProgress });
  const { plan } = prepared;
  // Cancelled while the slice was read or a lens fitted: nothing was computed, so no run is made.
  if (hooks.signal?.aborted) throw new LogitscopeError('cancelled', 'the sweep was cancelled before any example was computed; no run was created');
  const runId = store.createRun({
    name: hooks.name,
    model: { key: modelKey(engine.info), path: engine.info.modelDir, info: describeModel(engine.info, engine.tokenizer) },
    files: spec.files,
    datasetStats: { pool: prepared.dataset.pool, records: prepared.dataset.records, skipped: prepared.dataset.skipped, ...(hooks.shard && { shard: hooks.shard }) },
    protocol: spec.protocol,
    techniques: plan.techniques,
    layers: plan.layers,
    k: plan.k,
    strategy: plan.strategy,
    codeVersion: CODE_VERSION,
    spec,
    examplesPlanned: plan.examples.length,
  });
  store.setRunExamples(
    runId,
    plan.examples.map((e, ordinal) => ({ ordinal, recordIndex: e.recordIndex, source: e.source, text: e.text, tokens: e.tokens, position: e.position })),
  );
  hooks.onRunCreated?.(runId, prepared);
  const outcome = await finishInStore(engine, store, runId, plan, hooks);
  return { runId, prepared, outcome };
}

/**
 * Finishes an interrupted or cancelled run: its examples come from the store (not from the dataset
 * files again), everything already stored is read back, and only the rest is computed. The final
 * numbers are those an uninterrupted run gives.
 */
export async function resumeStoredSweep(engine: Engine, store: ResultStore, runId: string, hooks: StoredSweepHooks = {}): Promise<{ outcome: SweepOutcome; plan: SweepPlan }> {
  const run = store.getRun(runId);
  const key = modelKey(engine.info);
  if (run.modelKey !== key) {
    throw new LogitscopeError(
      'argument_invalid',
      `run ${runId} was computed with another model or device (${run.modelPath}); load that model to resume it`,
      'runId',
    );
  }
  if (run.status === 'completed') throw new LogitscopeError('argument_invalid', `run ${runId} is already complete`, 'runId');
  const examples = store.runExamples(runId).map((e) => ({ recordIndex: e.recordIndex, source: e.source, text: e.text ?? '', tokens: e.tokens, position: e.position }));
  const plan: SweepPlan = { examples, techniques: run.resolvedTechniques, layers: run.layers, k: run.k, strategy: run.strategy };
  store.resumeRun(runId);
  return { outcome: await finishInStore(engine, store, runId, plan, { ...hooks, shard: shardOfRun(run.dataset) }), plan };
}

async function finishInStore(engine: Engine, store: ResultStore, runId: string, plan: SweepPlan, hooks: StoredSweepHooks): Promise<SweepOutcome> {
  const started = performance.now();
  try {
    let cache = runSweepCache(store, runId, { recompute: hooks.recompute });
    if (hooks.shard) {
      // A shard computes its stride of the slice; the run keeps every example, so a merge (scale/merge.ts) can check the slices agree.
      const ordinals = shardOrdinals(plan.examples.length, hooks.shard);
      if (ordinals.length === 0) {
        store.finishRun(runId, { status: 'completed', timings: { wallMs: 0, computeMs: 0 } });
        return { status: 'completed', results: [], summary: [], timings: { computeSeconds: 0, examplesComputed: 0 } };
      }
      plan = { ...plan, examples: ordinals.map((o) => plan.examples[o]) };
      cache = shardCache(cache, ordinals);
    }
    const outcome = await runSweep(engine, plan, { signal: hooks.signal, cache, onProgress: hooks.onProgress, budgetBytes: hooks.budgetBytes, maxBatchExamples: hooks.maxBatchExamples });
    store.finishRun(runId, { status: outcome.status, timings: { wallMs: performance.now() - started, computeMs: outcome.timings.computeSeconds * 1000 } });
    return outcome;
  } catch (e) {
    // Finished batches are already committed; the run is marked failed so it can be resumed.
    try {
      store.finishRun(runId, { status: 'failed', error: serializeError(e) });
    } catch {
      // The store itself may be what failed (disk full, locked); the original error matters more.
    }
    throw e;
  }
}
