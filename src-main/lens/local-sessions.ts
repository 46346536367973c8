/**
 * The tuned lens's onnxruntime sessions and their runs (graphs.ts), as the lens worker executes
 * them. onnxruntime-node's `run` blocks the thread it is called on, so nothing here is called on
 * the main thread: sessions.ts sends each call to the lens worker (lens-worker.ts). The engine's
 * worker opens its own apply sessions with openApplySession, for the lens inside a batch.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DeviceChoice } from '../protocol/device.ts';
import { createSession, type HostTensor, type Session } from '../engine/ort-session.ts';
import { applyGraph, gemmGraph, gramGraph } from './graphs.ts';
import { LENS_WEIGHTS } from '../protocol/lens-settings.ts';

function f64(data: Float64Array, dims: number[]): HostTensor {
  // ort-session.ts's HostTensor lists the engine's types; onnxruntime-node takes float64 the same way.
  return { type: 'float64', data, dims } as unknown as HostTensor;
}
function f32(data: Float32Array, dims: number[]): HostTensor {
  return { type: 'float32', data, dims };
}

/** This module's URL: what the engine is given (EngineLoadOptions.lensSessions) to open its own apply sessions. */
export const LENS_SESSIONS_MODULE = import.meta.url;

const sessions = new Map<string, Promise<Session>>();

function cached(key: string, make: () => Promise<Session>): Promise<Session> {
  let s = sessions.get(key);
  if (!s) {
    s = make();
    s.catch(() => sessions.delete(key));
    sessions.set(key, s);
  }
  return s;
}

export interface GramChunk {
  xtx: Float64Array;
  xty: Float64Array;
  sumX: Float64Array;
  sumY: Float64Array;
}

export interface LensCalls {
  gram: { device: string; x: Float32Array; y: Float32Array; shiftX: Float64Array; shiftY: Float64Array; n: number; d: number };
  gemm: { device: string; a: Float64Array; b: Float64Array; c: Float64Array; m: number; k: number; n: number };
  apply: { device: string; dir: string; nLayers: number; dModel: number; rows: Float32Array; layerIndex: number[]; batch: number };
  release: Record<string, never>;
}
export interface LensReplies {
  gram: GramChunk;
  gemm: Float64Array;
  apply: Float32Array;
  release: null;
}

export async function runGram(p: LensCalls['gram']): Promise<GramChunk> {
  const s = await cached(`gram|${p.device}`, () => createSession(gramGraph(), { device: p.device, weightFolder: '.', label: `tuned-lens gram (${p.device})` }));
  const out = await s.run({ x: f32(p.x, [p.n, p.d]), y: f32(p.y, [p.n, p.d]), shift_x: f64(p.shiftX, [p.d]), shift_y: f64(p.shiftY, [p.d]) }, ['xtx', 'xty', 'sum_x', 'sum_y']);
  const get = (name: string) => out[name].data as unknown as Float64Array;
  return { xtx: get('xtx'), xty: get('xty'), sumX: get('sum_x'), sumY: get('sum_y') };
}

export async function runGemm(p: LensCalls['gemm']): Promise<Float64Array> {
  const s = await cached(`gemm|${p.device}`, () => createSession(gemmGraph(), { device: p.device, weightFolder: '.', label: `tuned-lens gemm (${p.device})` }));
  const out = await s.run({ a: f64(p.a, [p.m, p.k]), b: f64(p.b, [p.k, p.n]), c: f64(p.c, [p.m, p.n]) }, ['out']);
  return out.out.data as unknown as Float64Array;
}

/**
 * The apply session of the lens in `dir` (graphs.ts applyGraph over its weights.f32) on `device`.
 * Opened here for the naive path's maps, and by the engine worker for the fast path's batches.
 */
export function openApplySession(o: { dir: string; device: DeviceChoice | string; nLayers: number; dModel: number }): Promise<Session> {
  const layers = o.nLayers + 1;
  const d = o.dModel;
  return createSession(applyGraph({ layers, dModel: d, weightFile: LENS_WEIGHTS, bOffset: 4 * layers * d * d }), { device: o.device, weightFolder: o.dir, label: 'tuned-lens apply' });
}

/** rows [layers, batch, d] → rows·W + b of those layers (indices into the lens's layer axis). */
export async function runApply(p: LensCalls['apply']): Promise<Float32Array> {
  const d = p.dModel;
  // A lens's weights are memory-mapped once per process and device (external data, graphs.ts).
  // Keyed by the weights file's inode and mtime too: a lens refitted into the same folder is a new file.
  const st = fs.statSync(path.join(p.dir, LENS_WEIGHTS));
  const s = await cached(`apply|${p.dir}|${p.device}|${st.ino}|${st.mtimeMs}`, () => openApplySession(p));
  const out = await s.run(
    { rows: f32(p.rows, [p.layerIndex.length, p.batch, d]), layer_index: { type: 'int64', data: BigInt64Array.from(p.layerIndex, BigInt), dims: [p.layerIndex.length] } },
    ['mapped'],
  );
  return out.mapped.data as Float32Array;
}

/** Releases every session (and with them the memory-mapped lens weights). */
export async function releaseAll(): Promise<null> {
  const all = [...sessions.values()];
  sessions.clear();
  for (const s of all) await (await s.catch(() => null))?.release();
  return null;
}
