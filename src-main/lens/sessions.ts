/**
 * The tuned lens's onnxruntime calls from the main thread: each goes to one lens worker per
 * process (lens-worker.ts), because onnxruntime-node's `run` blocks the thread it runs on and the
 * fit's products run for seconds at GPT-J's width. The worker is referenced only while a call is
 * pending, so an idle one never keeps the process alive.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Engine } from '../engine/engine.ts';
import { deserializeError, LogitscopeError, type SerializedError } from '../errors.ts';
import { deviceName, type DeviceId } from '../protocol/device.ts';
import type { Gemm } from './linalg.ts';
import type { GramChunk, LensCalls, LensReplies } from './local-sessions.ts';

export type { GramChunk } from './local-sessions.ts';

/** The device the engine's sessions run on: the apply step runs there too. */
export function engineDevice(engine: Engine): DeviceId {
  return deviceName({ kind: engine.info.device, index: engine.info.deviceIndex });
}

/** The fit's float64 products: on the engine's CUDA GPU, else on the CPU (WebGPU has no float64). */
export function fitDevice(engine: Engine): DeviceId {
  const d = engineDevice(engine);
  return d.startsWith('cuda') ? d : 'cpu';
}

/** The worker's entry is TypeScript: started through tsx's loader, as the engine worker is (engine/worker-client.ts). */
function workerSource(): string {
  const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
  const tsxApi = pathToFileURL(tsxPackage.replace(/package\.json$/, 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./lens-worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
}

let worker: Worker | null = null;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
let nextId = 0;

function lensWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(workerSource(), { eval: true });
  w.unref();
  const fail = (e: Error) => {
    if (worker === w) worker = null;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  w.on('message', (reply: { id: number; ok: true; result: unknown } | { id: number; ok: false; error: SerializedError }) => {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (pending.size === 0) w.unref();
    if (reply.ok) p.resolve(reply.result);
    else p.reject(deserializeError(reply.error));
  });
  w.on('error', (e) => fail(new LogitscopeError('engine_failed', `tuned-lens worker crashed: ${e.message}`)));
  w.on('exit', (code) => fail(new LogitscopeError('engine_failed', `tuned-lens worker exited (code ${code})`)));
  worker = w;
  return w;
}

function call<K extends keyof LensCalls>(op: K, payload: LensCalls[K]): Promise<LensReplies[K]> {
  const w = lensWorker();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    w.ref(); // a pending call keeps the process alive until its reply
    w.postMessage({ id, op, payload });
  });
}

/** Products smaller than this many multiply-adds run here: a worker round trip costs more than they do. */
const SMALL_PRODUCT = 32 * 32 * 32;

/** The blocked solver's c − a·b through onnxruntime's float64 MatMul on `device`, in the lens worker. */
export function ortGemm(device: DeviceId): Gemm {
  return async (a, b, c, m, k, n) => {
    if (m * k * n < SMALL_PRODUCT) {
      const out = Float64Array.from(c);
      for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) out[i * n + j] -= a[i * k + p] * b[p * n + j];
      return out;
    }
    return call('gemm', { device, a, b, c, m, k, n });
  };
}

/** One chunk's shifted products for one layer (graphs.ts gramGraph), in the lens worker. */
export function gram(device: DeviceId, x: Float32Array, y: Float32Array, shiftX: Float64Array, shiftY: Float64Array, n: number, d: number): Promise<GramChunk> {
  return call('gram', { device, x, y, shiftX, shiftY, n, d });
}

/** rows [layerIndex.length, batch, d] through the lens in `dir` (graphs.ts applyGraph), in the lens worker. */
export function applyLens(p: LensCalls['apply']): Promise<Float32Array> {
  return call('apply', p);
}

/** Releases the worker's sessions and the lens weights they map (tests that delete a lens's files). */
export async function releaseLensSessions(): Promise<void> {
  if (worker) await call('release', {});
}
