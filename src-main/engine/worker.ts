/** The engine worker: owns the checkpoint, the built graphs and the onnxruntime sessions. */
import { parentPort } from 'node:worker_threads';
import { LogitscopeError, serializeError } from '../errors.ts';
import { openCheckpoint } from './checkpoint.ts';
import type { GraphName } from './graph/gptj-graphs.ts';
import { prepareModel } from './model-build.ts';
import { createSession, type HostTensor, type Session } from './ort-session.ts';
import type { LoadedModel, WorkerReply, WorkerRequest, WorkerRequests } from './worker-protocol.ts';

let sessions: Record<GraphName, Session> | undefined;

async function load({ modelDir, device, cacheRoot }: WorkerRequests['load']): Promise<LoadedModel> {
  const t0 = performance.now();
  const ckpt = openCheckpoint(modelDir, { cacheRoot });
  const t1 = performance.now();
  const computeDtype = device === 'cuda' ? 'float16' : 'float32';
  const built = prepareModel(ckpt, computeDtype, cacheRoot);
  const t2 = performance.now();
  const make = (g: GraphName) => createSession(built.graphs[g], { device, weightFolder: built.weightFolder, label: `${g} graph` });
  // One at a time: each session maps the same weight files, and peak memory matters more than seconds here.
  const full = await make('full');
  const step = await make('step');
  const unembed = await make('unembed');
  sessions = { full, step, unembed };
  return {
    config: ckpt.config,
    identity: ckpt.identity,
    format: ckpt.format,
    weightDtype: ckpt.dtype,
    computeDtype,
    device,
    cacheDir: built.cacheDir,
    weightFolder: built.weightFolder,
    converted: built.converted,
    graphsFromCache: built.fromCache,
    timings: { checkpoint: t1 - t0, graphs: t2 - t1, sessions: performance.now() - t2 },
  };
}

async function run({ graph, feeds, fetches }: WorkerRequests['run']): Promise<Record<string, HostTensor>> {
  if (!sessions) throw new LogitscopeError('engine_failed', 'no model is loaded in the engine worker');
  return sessions[graph].run(feeds, fetches);
}

function transferables(result: unknown): ArrayBuffer[] {
  if (typeof result !== 'object' || result === null) return [];
  const out: ArrayBuffer[] = [];
  for (const v of Object.values(result)) {
    const data = (v as Partial<HostTensor>)?.data;
    if (ArrayBuffer.isView(data) && data.buffer instanceof ArrayBuffer) out.push(data.buffer);
  }
  return out;
}

parentPort!.on('message', async (msg: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    const result = msg.op === 'load' ? await load(msg.payload) : await run(msg.payload);
    reply = { id: msg.id, ok: true, result };
    parentPort!.postMessage(reply, msg.op === 'run' ? transferables(result) : []);
  } catch (e) {
    reply = { id: msg.id, ok: false, error: serializeError(e) };
    parentPort!.postMessage(reply);
  }
});
