/**
 * The fit's float64 onnxruntime sessions (graphs.ts), created once per device and process. They run
 * on the thread that calls them; the fit is a one-off per (model, train slice) and its products
 * are large single calls, so a session's run is the unit of work, as in the engine's worker.
 */
import type { Engine } from '../engine/engine.ts';
import { createSession, type HostTensor, type Session } from '../engine/ort-session.ts';
import type { Gemm } from './linalg.ts';
import { gemmGraph, gramGraph } from './graphs.ts';

/** The host-tensor shape onnxruntime-node takes for float64 (ort-session.ts's type lists the engine's types only). */
export function f64(data: Float64Array, dims: number[]): HostTensor {
  return { type: 'float64', data, dims } as unknown as HostTensor;
}
export function f32(data: Float32Array, dims: number[]): HostTensor {
  return { type: 'float32', data, dims };
}

/** A device as createSession reads it: cpu, cuda:N or webgpu (engine/device.ts). */
export type LensDevice = string;

/** The device the engine's sessions run on: the apply step runs there too. */
export function engineDevice(engine: Engine): LensDevice {
  const kind: string = engine.info.device;
  return kind === 'cuda' ? `cuda:${(engine.info as { deviceIndex?: number }).deviceIndex ?? 0}` : kind;
}

/**
 * The fit's float64 products: on the engine's CUDA GPU, else on the CPU (WebGPU has no float64).
 */
export function fitDevice(engine: Engine): LensDevice {
  const d = engineDevice(engine);
  return d.startsWith('cuda') ? d : 'cpu';
}

const cache = new Map<string, Promise<Session>>();

function session(kind: 'gram' | 'gemm', device: LensDevice): Promise<Session> {
  const name = device;
  const key = `${kind}:${name}`;
  let s = cache.get(key);
  if (!s) {
    s = createSession(kind === 'gram' ? gramGraph() : gemmGraph(), { device, weightFolder: '.', label: `tuned-lens ${kind} (${name})` });
    s.catch(() => cache.delete(key));
    cache.set(key, s);
  }
  return s;
}

/** Products smaller than this many multiply-adds run in JS: a session call costs more than they do. */
const SMALL_PRODUCT = 32 * 32 * 32;

/** The blocked solver's c − a·b through onnxruntime's float64 MatMul on `device`. */
export function ortGemm(device: LensDevice): Gemm {
  return async (a, b, c, m, k, n) => {
    if (m * k * n < SMALL_PRODUCT) {
      const out = Float64Array.from(c);
      for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) out[i * n + j] -= a[i * k + p] * b[p * n + j];
      return out;
    }
    const s = await session('gemm', device);
    const out = await s.run({ a: f64(a, [m, k]), b: f64(b, [k, n]), c: f64(c, [m, n]) }, ['out']);
    return out.out.data as unknown as Float64Array;
  };
}

export interface GramChunk {
  xtx: Float64Array;
  xty: Float64Array;
  sumX: Float64Array;
  sumY: Float64Array;
}

/** One chunk's shifted products for one layer (graphs.ts gramGraph). */
export async function gram(device: LensDevice, x: Float32Array, y: Float32Array, shiftX: Float64Array, shiftY: Float64Array, n: number, d: number): Promise<GramChunk> {
  const s = await session('gram', device);
  const out = await s.run({ x: f32(x, [n, d]), y: f32(y, [n, d]), shift_x: f64(shiftX, [d]), shift_y: f64(shiftY, [d]) }, ['xtx', 'xty', 'sum_x', 'sum_y']);
  const get = (name: string) => out[name].data as unknown as Float64Array;
  return { xtx: get('xtx'), xty: get('xty'), sumX: get('sum_x'), sumY: get('sum_y') };
}
