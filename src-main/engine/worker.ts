/** The engine worker: owns the checkpoint, the built graphs, the onnxruntime sessions and every residual. */
import { parentPort } from 'node:worker_threads';
import { LogitscopeError, serializeError } from '../errors.ts';
import { openCheckpoint } from './checkpoint.ts';
import type { GraphName } from './graph/gptj-graphs.ts';
import { prepareModel } from './model-build.ts';
import { type LensOpener, type LensSessionsModule } from './lens-sessions.ts';
import { ModelRunner } from './model-runner.ts';
import { createSession } from './ort-session.ts';
import type { LoadedModel, Meter, WorkerRequest, WorkerRequests } from './worker-protocol.ts';

let runner: ModelRunner | undefined;

async function load({ modelDir, device, cacheRoot, dtype, lensSessions }: WorkerRequests['load']): Promise<LoadedModel> {
  const t0 = performance.now();
  const ckpt = openCheckpoint(modelDir, { cacheRoot });
  const t1 = performance.now();
  const built = await prepareModel(ckpt, dtype, cacheRoot);
  const t2 = performance.now();
  const make = (g: GraphName) => createSession(built.graphs[g], { device, weightFolder: built.weightFolder, label: `${g} graph` });
  // One at a time: peak memory matters more than seconds here. No weight is in both sessions.
  const blocks = await make('blocks');
  const unembed = await make('unembed');
  // A tuned lens's apply step runs here too, on the same device, when a batch names one.
  let openLens: LensOpener | undefined;
  if (lensSessions) {
    const lens = (await import(lensSessions)) as LensSessionsModule;
    openLens = (dir) => lens.openApplySession({ dir, device, nLayers: ckpt.config.nLayers, dModel: ckpt.config.dModel });
  }
  runner = new ModelRunner({ blocks, unembed }, ckpt.config, dtype, openLens);
  return {
    config: ckpt.config,
    identity: ckpt.identity,
    format: ckpt.format,
    weightDtype: ckpt.dtype,
    computeDtype: dtype,
    device: device.kind,
    deviceIndex: device.index,
    cacheDir: built.cacheDir,
    weightFolder: built.weightFolder,
    converted: built.converted,
    graphsFromCache: built.fromCache,
    timings: { checkpoint: t1 - t0, graphs: t2 - t1, sessions: performance.now() - t2 },
  };
}

function loaded(): ModelRunner {
  if (!runner) throw new LogitscopeError('engine_failed', 'no model is loaded in the engine worker');
  return runner;
}

/** Each op, and the typed arrays of its reply, which are moved to the main thread, not copied. */
async function handle(msg: WorkerRequest): Promise<{ result: unknown; transfer: ArrayBuffer[] }> {
  switch (msg.op) {
    case 'load':
      return { result: await load(msg.payload), transfer: [] };
    case 'source': {
      const r = await loaded().source(msg.payload.items, msg.payload.names);
      return { result: r, transfer: [r.resid.buffer, r.logits.buffer] as ArrayBuffer[] };
    }
    case 'prefix':
      return { result: { length: (await loaded().prefix(msg.payload.tokens)).tokens.length - 1 }, transfer: [] };
    case 'patched': {
      const final = await loaded().patched(msg.payload.prefixTokens, msg.payload.vectors, msg.payload.injectLayers);
      return { result: { final }, transfer: [final.buffer as ArrayBuffer] };
    }
    case 'naive': {
      const final = await loaded().naive(msg.payload.targetTokens, msg.payload.layer, msg.payload.vector);
      return { result: { final }, transfer: [final.buffer as ArrayBuffer] };
    }
    case 'unembed': {
      const r = await loaded().unembed(msg.payload);
      return { result: r, transfer: buffersOf(r) };
    }
    case 'batch': {
      const r = await loaded().batch(msg.payload);
      return { result: r, transfer: buffersOf(r) };
    }
  }
}

/** The distinct buffers behind a reply's typed arrays (onnxruntime outputs each own one). */
function buffersOf(result: object): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const v of Object.values(result)) if (ArrayBuffer.isView(v) && v.buffer instanceof ArrayBuffer) out.add(v.buffer);
  return [...out];
}

function meter(started: number): Meter {
  const stats = runner?.stats ?? { sourceRuns: 0, sourceRows: 0, patchedRuns: 0, patchedRows: 0, unembedRuns: 0, unembedRows: 0, naiveRuns: 0, lensRuns: 0, lensRows: 0 };
  const timings = runner?.timings ?? { full: 0, step: 0, unembed: 0, lens: 0, host: 0 };
  return { stats: { ...stats }, sourcePrompts: runner?.sourcePrompts ?? 0, timings: { ...timings }, callMs: performance.now() - started };
}

parentPort!.on('message', async (msg: WorkerRequest) => {
  const started = performance.now();
  try {
    const { result, transfer } = await handle(msg);
    parentPort!.postMessage({ id: msg.id, ok: true, result, meter: meter(started) }, transfer);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, ok: false, error: serializeError(e), meter: meter(started) });
  }
});
