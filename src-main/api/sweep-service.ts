import path from 'node:path';
import { assertUnchanged, checkFingerprints, fingerprintDataset, recordedFingerprints, type DatasetFingerprint } from '../data/fingerprint.ts';
import type { SliceProgress } from '../data/slice.ts';
import type { Engine } from '../engine/engine.ts';
import type { FitProgress } from '../lens/fit.ts';
import { LogitscopeError, serializeError } from '../errors.ts';
import { modelKey } from '../store/keys.ts';
import type { ResultStore } from '../store/result-store.ts';
import type { NewRun, RunDetail } from '../store/types.ts';
import { runSweepCache } from '../store/sweep-cache.ts';
import { describeModel } from '../sweep/export-record.ts';
import { prepareSweep, type PreparedSweep } from '../sweep/prepare.ts';
import { runSweep, type SweepOutcome, type SweepPlan, type SweepProgress } from '../sweep/run-sweep.ts';
import type { SweepSpec } from '../protocol/spec.ts';
import type { Shard } from '../protocol/shards.ts';
import { shardCache, shardOfRun, shardOrdinals } from '../scale/shard.ts';
import { holdForTest, withTestHold } from '../sweep/test-hold.ts';
import { CODE_VERSION } from './code-version.ts';
import { checkRunModel } from './model-check.ts';

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
  /** Take nothing from the cache: compute every row again and store it as the run's own, beside the old one (store/generations.ts). */
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
  const fingerprints = fingerprintDataset(spec.files, cacheRootOf(engine));
  const prepared = await readSlice(engine, spec, hooks, fingerprints);
  const { plan } = prepared;
  // Cancelled while the slice was read or a lens fitted: nothing was computed, so no run is made.
  if (hooks.signal?.aborted) throw new LogitscopeError('cancelled', 'the sweep was cancelled before any example was computed; no run was created');
  const runId = stage(store, undefined, 'run', () => store.createRun({
    name: hooks.name,
    model: runModelOf(engine),
    files: spec.files,
    datasetStats: {
      pool: prepared.dataset.pool, records: prepared.dataset.records, skipped: prepared.dataset.skipped, fingerprints, ...(hooks.shard && { shard: hooks.shard }),
    },
    protocol: spec.protocol,
    techniques: plan.techniques,
    layers: plan.layers,
    k: plan.k,
    strategy: plan.strategy,
    codeVersion: CODE_VERSION,
    spec,
    examplesPlanned: plan.examples.length,
    ownsRows: hooks.recompute,
  }));
  await holdForTest({ dbFile: store.file, shardIndex: hooks.shard?.index, signal: hooks.signal }, 'run');
  storeSlice(store, runId, plan);
  hooks.onRunCreated?.(runId, prepared);
  const outcome = await finishInStore(engine, store, runId, plan, hooks);
  return { runId, prepared, outcome };
}

/** A run's model as a new run records it: its cache key, its folder and describeModel's record. */
export function runModelOf(engine: Engine): NewRun['model'] {
  return { key: modelKey(engine.info), path: engine.info.modelDir, info: describeModel(engine.info, engine.tokenizer) };
}

/** Whether this engine can resume the run: the same model key (model, dtype, device), and not yet complete. */
export function checkResumable(engine: Engine, run: RunDetail): void {
  checkRunModel(engine.info, run, 'resume it');
  if (run.status === 'completed') throw new LogitscopeError('argument_invalid', `run ${run.id} is already complete`, 'runId');
}

/**
 * Finishes an interrupted or cancelled run: its examples come from the store (not from the dataset
 * files again), everything already stored is read back, and only the rest is computed. The final
 * numbers are those an uninterrupted run gives.
 */
export async function resumeStoredSweep(engine: Engine, store: ResultStore, runId: string, hooks: StoredSweepHooks = {}): Promise<{ outcome: SweepOutcome; plan: SweepPlan }> {
  const run = store.getRun(runId);
  checkResumable(engine, run);
  store.resumeRun(runId);
  let stored = store.runExamples(runId);
  if (run.examplesPlanned !== null && stored.length < run.examplesPlanned) {
    // The slice never got stored (the disk filled up while it was): read it again, as the run first did.
    try {
      await restoreSlice(engine, store, runId, hooks);
    } catch (e) {
      failRun(store, runId, e);
      throw e;
    }
    stored = store.runExamples(runId);
  }
  const examples = stored.map((e) => ({ recordIndex: e.recordIndex, source: e.source, text: e.text ?? '', tokens: e.tokens, position: e.position, ...(e.track !== undefined && { track: e.track }) }));
  const plan: SweepPlan = { examples, techniques: run.resolvedTechniques, layers: run.layers, k: run.k, strategy: run.strategy };
  return { outcome: await finishInStore(engine, store, runId, plan, { ...hooks, shard: shardOfRun(run.dataset) }), plan };
}

/**
 * The run's slice read again from its recorded spec, for a run whose slice was never stored. The
 * files must still hold what the run first read (its fingerprints), and give the same examples.
 */
async function restoreSlice(engine: Engine, store: ResultStore, runId: string, hooks: StoredSweepHooks): Promise<void> {
  const run = store.getRun(runId);
  if (!run.spec) throw new LogitscopeError('argument_invalid', `run ${runId} has no stored slice and no recorded sweep to read it from again; start a new sweep`, 'runId');
  const changed = checkFingerprints(recordedFingerprints(run.dataset), cacheRootOf(engine)).filter((c) => !c.matches);
  if (changed.length > 0) {
    throw new LogitscopeError('dataset_changed', `run ${runId}'s slice was never stored, and this file no longer holds what the run read (${changed[0].detail}); start a new sweep`, changed[0].file);
  }
  const fingerprints = fingerprintDataset(run.spec.files, cacheRootOf(engine));
  const { plan } = await readSlice(engine, run.spec, { ...hooks, onLensProgress: undefined }, fingerprints);
  if (plan.examples.length !== run.examplesPlanned) {
    throw new LogitscopeError('dataset_changed', `run ${runId} planned ${run.examplesPlanned} examples, but its files now give ${plan.examples.length}; start a new sweep`, run.spec.files[0]);
  }
  storeSlice(store, runId, plan);
}

/** Reads and prepares the slice; a file that changed meanwhile is dataset_changed, whatever else the read made of it. */
async function readSlice(engine: Engine, spec: SweepSpec, hooks: StoredSweepHooks, fingerprints: DatasetFingerprint[]): Promise<PreparedSweep> {
  let prepared: PreparedSweep;
  try {
    prepared = await prepareSweep(engine, spec, { signal: hooks.signal, onProgress: hooks.onPreparing, onLensProgress: hooks.onLensProgress });
  } catch (e) {
    assertUnchanged(fingerprints); // a file cut short can look like an empty slice or a parse error
    throw e;
  }
  assertUnchanged(fingerprints);
  return prepared;
}

/** The slice's examples, in one transaction; a failure marks the run failed with advice that works (resume redoes this stage). */
function storeSlice(store: ResultStore, runId: string, plan: SweepPlan): void {
  try {
    stage(store, runId, 'slice', () =>
      store.setRunExamples(
        runId,
        plan.examples.map((e, ordinal) => ({ ordinal, recordIndex: e.recordIndex, source: e.source, text: e.text, tokens: e.tokens, position: e.position, ...(e.track !== undefined && { track: e.track }) })),
      ),
    );
  } catch (e) {
    failRun(store, runId, e);
    throw e;
  }
}

type Stage = 'run' | 'slice' | 'batches';

/**
 * Runs one stage's writes; a full disk (cache_full) is reworded to say what was kept and what to do
 * next at this stage, with the database's path. Other errors pass unchanged.
 */
function stage<T>(store: ResultStore, runId: string | undefined, what: Stage, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fullDisk(store, runId, what, e);
  }
}

function fullDisk(store: ResultStore, runId: string | undefined, what: Stage, e: unknown): unknown {
  if (!(e instanceof LogitscopeError) || e.code !== 'cache_full') return e;
  const disk = 'the disk holding this results database is full (or the database reached its size limit)';
  const resume = `free some space, then \`logitscope sweep --resume ${runId} --db ${store.file}\``;
  const advice = {
    run: `${disk}; no run was created — free some space and start the sweep again`,
    slice: `${disk} while the slice was stored; run ${runId} was created without its examples — ${resume} stores the slice again (from the same files) and computes it`,
    batches: `${disk}; run ${runId} keeps every batch saved before this one — ${resume} continues where it stopped`,
  }[what];
  return new LogitscopeError('cache_full', advice, store.file);
}

/** Marks the run failed with the error, when the store can still be written (a full disk may not let it). */
function failRun(store: ResultStore, runId: string, e: unknown): void {
  try {
    store.finishRun(runId, { status: 'failed', error: serializeError(e) });
  } catch {
    // The run stays running until this process lets go of it, then reads as interrupted: resumable either way.
  }
}

/** The cache root the engine was loaded with (its cacheDir is <root>/<identity>/<dtype>), where checkpoint hashes are remembered too. */
function cacheRootOf(engine: Engine): string {
  return path.dirname(path.dirname(engine.info.cacheDir));
}

async function finishInStore(engine: Engine, store: ResultStore, runId: string, plan: SweepPlan, hooks: StoredSweepHooks): Promise<SweepOutcome> {
  const started = performance.now();
  try {
    let cache = runSweepCache(store, runId);
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
    const held = { dbFile: store.file, shardIndex: hooks.shard?.index, signal: hooks.signal };
    await holdForTest(held, 0);
    cache = withTestHold(cache, held);
    const outcome = await runSweep(engine, plan, { signal: hooks.signal, cache, onProgress: hooks.onProgress, budgetBytes: hooks.budgetBytes, maxBatchExamples: hooks.maxBatchExamples });
    store.finishRun(runId, { status: outcome.status, timings: { wallMs: performance.now() - started, computeMs: outcome.timings.computeSeconds * 1000 } });
    return outcome;
  } catch (e) {
    // Finished batches are already committed; the run is marked failed so it can be resumed.
    const err = fullDisk(store, runId, 'batches', e);
    failRun(store, runId, err);
    throw err;
  }
}
