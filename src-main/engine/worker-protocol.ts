import type { SerializedError } from '../errors.ts';
import type { GptjConfig } from './config.ts';
import type { GraphName } from './graph/gptj-graphs.ts';
import type { ComputeType } from './graph/layers.ts';
import type { Device, HostTensor } from './ort-session.ts';
import type { WeightDtype } from './tensor-ref.ts';

/** Messages between the engine (main thread) and the worker that owns the onnxruntime sessions. */
export interface WorkerRequests {
  load: { modelDir: string; device: Device; cacheRoot: string };
  run: { graph: GraphName; feeds: Record<string, HostTensor>; fetches: string[] };
}

export interface LoadedModel {
  config: GptjConfig;
  identity: string;
  format: string;
  weightDtype: WeightDtype;
  computeDtype: ComputeType;
  device: Device;
  cacheDir: string;
  weightFolder: string;
  converted: boolean;
  graphsFromCache: boolean;
  /** Milliseconds spent in each loading stage. */
  timings: { checkpoint: number; graphs: number; sessions: number };
}

export interface WorkerReplies {
  load: LoadedModel;
  run: Record<string, HostTensor>;
}

export type WorkerRequest = { [K in keyof WorkerRequests]: { id: number; op: K; payload: WorkerRequests[K] } }[keyof WorkerRequests];
export type WorkerReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: SerializedError };
