/**
 * The one module that imports onnxruntime-node. It runs inside the engine worker thread,
 * because `session.run` blocks the thread it is called on for the whole run.
 */
import * as ort from 'onnxruntime-node';
import { LogitscopeError } from '../errors.ts';
import { CUDA_INSTALL_HINT, cudaProviderInstalled, ortBinaryDir } from './cuda-provider.ts';
import { type DeviceChoice, deviceName, parseDevice } from '../protocol/device.ts';

/**
 * A tensor as plain typed-array data, cheap to post between threads. fp16 travels as its bit
 * patterns; it stays inside the worker (prefix keys/values) and weight conversion: every graph
 * input and output the engine's callers see is fp32 or int64.
 */
export type HostTensor =
  | { type: 'float32'; data: Float32Array; dims: number[] }
  | { type: 'float16'; data: Uint16Array; dims: number[] }
  | { type: 'uint16'; data: Uint16Array; dims: number[] }
  | { type: 'uint32'; data: Uint32Array; dims: number[] }
  | { type: 'int64'; data: BigInt64Array; dims: number[] };

export interface Session {
  run(feeds: Record<string, HostTensor>, fetches: readonly string[]): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

/** The onnxruntime execution provider for a device: CUDA's deviceId picks the GPU. */
export function executionProvider(d: DeviceChoice): ort.InferenceSession.ExecutionProviderConfig {
  if (d.kind === 'cuda') return { name: 'cuda', deviceId: d.index };
  return d.kind === 'webgpu' ? { name: 'webgpu' } : 'cpu';
}

export async function createSession(
  model: Uint8Array,
  opts: { device: DeviceChoice | string; weightFolder: string; label: string; threads?: number },
): Promise<Session> {
  const device = typeof opts.device === 'string' ? parseDevice(opts.device) : opts.device;
  const { kind } = device;
  if (kind === 'cuda' && !cudaProviderInstalled()) {
    throw new LogitscopeError('device_unavailable', `the onnxruntime CUDA provider is not installed: ${CUDA_INSTALL_HINT}`, ortBinaryDir());
  }
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [executionProvider(device)],
    graphOptimizationLevel: 'all',
    ...(opts.threads !== undefined && { intraOpNumThreads: opts.threads }),
    extra: {
      session: {
        // The graph is loaded from memory; its external weights sit in this folder (the checkpoint's own files).
        model_external_initializers_file_folder_path: opts.weightFolder,
        // Sessions run one after another; spinning threads would starve the next session's pool.
        intra_op: { allow_spinning: '0' },
        // onnxruntime memory-maps the external weights, so the three sessions share one copy in the
        // page cache. Pre-packing would give each session its own repacked anonymous copy instead
        // (measured: +1.5 GB per GPT-J layer across the sessions; see bench/engine-load.ts).
        disable_prepacking: '1',
      },
    },
  };
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model, options);
  } catch (e) {
    const message = (e as Error).message;
    if (kind === 'cuda') {
      throw new LogitscopeError('device_unavailable', `CUDA session could not start on ${deviceName(device)} (${message}); ${CUDA_INSTALL_HINT}`, opts.label);
    }
    if (kind === 'webgpu') {
      throw new LogitscopeError('device_unavailable', `WebGPU session could not start (${message}); it needs a GPU with a Vulkan driver that has a WebGPU adapter`, opts.label);
    }
    throw new LogitscopeError('engine_failed', `onnxruntime could not create the ${opts.label} session: ${message}`, opts.label);
  }
  return {
    async run(feeds, fetches) {
      const inputs: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) inputs[name] = new ort.Tensor(t.type, t.data, t.dims);
      let out: ort.InferenceSession.ReturnType;
      try {
        out = await session.run(inputs, fetches as string[]);
      } catch (e) {
        throw new LogitscopeError('engine_failed', `${opts.label} run failed: ${(e as Error).message}`, opts.label);
      }
      const result: Record<string, HostTensor> = {};
      for (const name of fetches) {
        const t = out[name];
        result[name] = { type: t.type, data: t.data, dims: [...t.dims] } as HostTensor;
      }
      return result;
    },
    release: () => session.release(),
  };
}

/** The execution providers this onnxruntime-node build knows, and whether each ships with it. */
export function listProviders(): { name: string; bundled: boolean }[] {
  return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

/** Whether a session can really start on `device` (cpu, cuda, cuda:N, webgpu): a one-node graph, so nothing else is needed. */
export async function probeDevice(device: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  const { GraphBuilder } = await import('./graph/onnx-builder.ts');
  const b = new GraphBuilder('probe');
  b.output(b.input('x', 'float32', [1]), 'y', 'float32', [1]);
  try {
    const session = await createSession(b.encode(), { device, weightFolder: '.', label: `${device} probe` });
    await session.run({ x: { type: 'float32', data: new Float32Array([1]), dims: [1] } }, ['y']);
    await session.release();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}
