/**
 * `sweep.*`: start a sweep on the loaded engine or across devices, cancel it, resume it. Each is
 * checked against its model (model-check.ts) before any work, and answers once its run exists.
 */
import path from 'node:path';
import { readGptjConfig } from '../engine/config.ts';
import { deserializeError, LogitscopeError } from '../errors.ts';
import { sweepOnDevices } from '../scale/devices.ts';
import { resolveProtocol } from '../protocol/presets.ts';
import type { SweepSpec } from '../protocol/spec.ts';
import type { Parsed } from './contract.ts';
import type { Handlers, LabContext, RequestsOf } from './handlers.ts';
import { checkAgainstModel, refuseIssues } from './model-check.ts';
import type { RequestTag } from './run-registry.ts';
import { checkResumable, resumeStoredSweep, runStoredSweep } from './sweep-service.ts';
import { techniqueSpecs } from './technique-choices.ts';
import { resolveRunId } from './views.ts';

type RunId = { runId: string };

export function sweepHandlers(lab: LabContext): Handlers<RequestsOf<'sweep'>> {
  const { store, runs } = lab;
  return {
    'sweep.start': async (p) => {
      const tag: RequestTag = p.requestId === undefined ? {} : { requestId: p.requestId };
      return p.devices ? startOnDevices(lab, p, tag) : startHere(lab, p, tag);
    },

    'sweep.cancel': async (p) => {
      if (p.requestId !== undefined) return { cancelled: runs.cancelRequest(p.requestId) };
      return { cancelled: runs.cancel(resolveRunId(store, p.runId!)) };
    },

    'sweep.resume': async (p) => {
      const tag: RequestTag = p.requestId === undefined ? {} : { requestId: p.requestId };
      const runId = resolveRunId(store, p.runId);
      if (runs.has(runId)) throw new LogitscopeError('run_busy', `run ${runId} is already running`, 'runId');
      const engine = await lab.engine.acquire();
      try {
        // Everything that would make the resume fail is checked before the reply says it started.
        checkResumable(engine, store.getRun(runId));
      } catch (e) {
        lab.engine.release();
        throw e;
      }
      const controller = new AbortController();
      const work = resumeStoredSweep(engine, store, runId, { maxBatchExamples: p.batchSize, signal: controller.signal, onProgress: runs.progress(runId, tag) });
      runs.track(runId, controller, work);
      work
        .then(
          ({ outcome }) => runs.finished(runId, outcome.status, tag),
          (e) => runs.finished(runId, 'failed', tag, e),
        )
        .finally(() => lab.engine.release());
      lab.emit('runs.changed', {});
      return { runId };
    },
  };
}

/** A sweep on the loaded engine, leased until the sweep ends. */
async function startHere(lab: LabContext, p: Parsed<'sweep.start'>, tag: RequestTag): Promise<RunId> {
  const engine = await lab.engine.acquire();
  let leased = true;
  try {
    refuseIssues('sweep.start', checkAgainstModel(engine.config, p));
    const spec: SweepSpec = {
      modelDir: engine.info.modelDir,
      device: engine.info.device,
      files: p.files,
      protocol: resolveProtocol(p.preset, p.overrides),
      techniques: techniqueSpecs(p.techniques),
      layers: p.layers,
      k: p.k,
      strategy: p.strategy,
      ...(p.track === 'record' && { track: 'record' as const }),
    };
    const controller = lab.runs.begin(tag);
    return await new Promise<RunId>((resolve, reject) => {
      const run = lab.runs.started(controller, tag, resolve);
      let read = { scanned: 0, passed: 0, filteredOut: 0 };
      const work = (run.work = runStoredSweep(engine, lab.store, spec, {
        name: p.name,
        recompute: p.recompute,
        shard: p.shard,
        maxBatchExamples: p.batchSize,
        signal: controller.signal,
        onPreparing: (s) => {
          read = { scanned: s.scanned, passed: s.passed, filteredOut: s.filteredOut };
          if (p.requestId) lab.emit('sweep.preparing', { requestId: p.requestId, ...read });
        },
        // A tuned lens's fit comes after the slice is read: its events repeat the slice's last counts.
        onLensProgress: (lens) => p.requestId && lab.emit('sweep.preparing', { requestId: p.requestId, ...read, lens }),
        onRunCreated: run.onRunCreated,
        onProgress: run.onProgress,
      }));
      leased = false;
      work
        .then(
          ({ outcome }) => lab.runs.finished(run.runId!, outcome.status, tag),
          (e) => (run.runId ? lab.runs.finished(run.runId, 'failed', tag, e) : reject(e)),
        )
        .finally(() => {
          lab.runs.end(tag, controller);
          lab.engine.release();
        });
    });
  } finally {
    if (leased) lab.engine.release();
  }
}

/**
 * A sweep with devices: the shards run in child processes (scale/devices.ts), each loading the
 * model itself, and are merged into this Lab's database; the run's events are the merged ones.
 * The request is checked against the model's config first, so a bad one starts no child.
 */
async function startOnDevices(lab: LabContext, p: Parsed<'sweep.start'>, tag: RequestTag): Promise<RunId> {
  const { devices, modelDir: dir, dtype, ...request } = p;
  const modelDir = dir ? path.resolve(dir) : lab.engine.current?.info.modelDir;
  if (!modelDir) throw new LogitscopeError('model_not_loaded', 'load a model first, or give modelDir with devices', 'modelDir');
  refuseIssues('sweep.start', checkAgainstModel(readGptjConfig(modelDir), p));
  const controller = lab.runs.begin(tag);
  return new Promise((resolve, reject) => {
    const run = lab.runs.started(controller, tag, resolve);
    const work = (run.work = sweepOnDevices({
      store: lab.store, devices: devices!, modelDir, dtype, request, cacheRoot: lab.cacheRoot, signal: controller.signal,
      onRunCreated: run.onRunCreated,
      onProgress: run.onProgress,
    }));
    work
      .then(
        (r) => lab.runs.finished(r.runId, r.status, tag, r.error && deserializeError(r.error)),
        (e) => (run.runId ? lab.runs.finished(run.runId, 'failed', tag, e) : reject(e)),
      )
      .finally(() => lab.runs.end(tag, controller));
  });
}
