import { LogitscopeError } from '../errors.ts';

/**
 * The kinds of device the engine runs on. Results are keyed by the kind (with the compute dtype),
 * never by which GPU: shards on cuda:0 and cuda:1 compute the same numbers and merge into one run.
 */
export type DeviceKind = 'cpu' | 'cuda' | 'webgpu';

/**
 * One device as a string: a kind, or `cuda:N` for GPU N (what --device, model.load and
 * createSession take). Distinct from DeviceKind, which results are keyed by.
 */
export type DeviceId = DeviceKind | `cuda:${number}`;

/** A device as chosen: its kind, and for CUDA which GPU (onnxruntime's CUDA `deviceId`, as nvidia-smi numbers them unless CUDA_VISIBLE_DEVICES reorders). */
export interface DeviceChoice {
  readonly kind: DeviceKind;
  readonly index: number;
}

/** The spellings `parseDevice` accepts: cpu, webgpu, cuda (= cuda:0) and cuda:N. */
export const DEVICE_FORMAT = 'cpu, cuda, cuda:N (N = 0, 1, …: one GPU of the machine) or webgpu';

/** Also the API schema's check of a device (api/schemas.ts), so the two never disagree. */
export const DEVICE_PATTERN = /^(?:(cpu)|(webgpu)|(cuda)(?::(0|[1-9]\d{0,2}))?)$/;

/**
 * A device string as a user or a caller writes it (`--device cuda:1`, `model.load`'s device) into
 * its kind and GPU index. Anything else (`gpu`, `cuda:x`, `CUDA`, `cuda:01`, `cuda:`) is an
 * argument_invalid error naming `field`, raised before any model is read.
 */
export function parseDevice(text: string, field = 'device'): DeviceChoice {
  const m = DEVICE_PATTERN.exec(text);
  if (!m) throw new LogitscopeError('argument_invalid', `unknown device "${text}": a device is ${DEVICE_FORMAT}`, field);
  if (m[1]) return { kind: 'cpu', index: 0 };
  if (m[2]) return { kind: 'webgpu', index: 0 };
  return { kind: 'cuda', index: m[4] === undefined ? 0 : Number(m[4]) };
}

/** The string that parses back to `d` ("cuda:1"; the CPU and WebGPU have no index). */
export function deviceName(d: DeviceChoice): DeviceId {
  return d.kind === 'cuda' ? `cuda:${d.index}` : d.kind;
}
