import fs from 'node:fs';
import path from 'node:path';
import type { Checkpoint } from './checkpoint.ts';
import { readTensorAsFloat32 } from './checkpoint.ts';
import { encodeHalf } from './dtype.ts';
import type { WeightPlacement } from './graph/gptj-graphs.ts';
import type { ComputeType } from './graph/layers.ts';
import { allWeightNames } from './graph/weight-names.ts';
import type { TensorRef, WeightDtype } from './tensor-ref.ts';

/** Where a session finds every weight: one folder, and per tensor a file in it and an offset. */
export interface WeightPlan {
  readonly folder: string;
  /** True when the checkpoint's dtype did not fit and a converted copy was written to the cache. */
  readonly converted: boolean;
  place(name: string): WeightPlacement;
}

const WANTED: Record<ComputeType, WeightDtype> = { float32: 'F32', float16: 'F16' };
const ALIGN = 64;

/**
 * Point straight into the checkpoint's files when their dtype is the compute dtype (zero copy:
 * onnxruntime reads the bytes from the .safetensors or .bin file itself). Otherwise write one
 * converted file into `cacheDir`, tensor by tensor, and reuse it on later loads.
 */
export function planWeights(ckpt: Checkpoint, dtype: ComputeType, cacheDir: string): WeightPlan {
  const refs = allWeightNames(ckpt.config).map((n) => ckpt.tensors.get(n)!);
  const folders = new Set(refs.map((r) => path.dirname(r.file)));
  if (refs.every((r) => r.dtype === WANTED[dtype]) && folders.size === 1) {
    const byName = new Map(refs.map((r) => [r.name, r]));
    return {
      folder: [...folders][0],
      converted: false,
      place: (name) => {
        const ref = byName.get(name)!;
        return { ref, location: path.basename(ref.file), offset: ref.offset };
      },
    };
  }
  return convertedPlan(ckpt, refs, WANTED[dtype], cacheDir);
}

interface ConvertedIndex {
  identity: string;
  dtype: WeightDtype;
  tensors: Record<string, { offset: number; shape: number[]; byteLength: number }>;
}

function convertedPlan(ckpt: Checkpoint, refs: TensorRef[], dtype: WeightDtype, cacheDir: string): WeightPlan {
  const file = `weights-${dtype.toLowerCase()}.bin`;
  const indexFile = path.join(cacheDir, `${file}.json`);
  let index = readIndex(indexFile, ckpt.identity, dtype);
  if (!index) {
    index = writeConverted(refs, dtype, path.join(cacheDir, file), ckpt.identity);
    fs.writeFileSync(`${indexFile}.tmp`, JSON.stringify(index));
    fs.renameSync(`${indexFile}.tmp`, indexFile);
  }
  const entries = index.tensors;
  return {
    folder: cacheDir,
    converted: true,
    place: (name) => {
      const e = entries[name];
      const ref: TensorRef = { name, dtype, shape: e.shape, file: path.join(cacheDir, file), offset: e.offset, byteLength: e.byteLength };
      return { ref, location: file, offset: e.offset };
    },
  };
}

function readIndex(indexFile: string, identity: string, dtype: WeightDtype): ConvertedIndex | undefined {
  try {
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as ConvertedIndex;
    return index.identity === identity && index.dtype === dtype ? index : undefined;
  } catch {
    return undefined;
  }
}

function writeConverted(refs: TensorRef[], dtype: WeightDtype, target: string, identity: string): ConvertedIndex {
  const tmp = `${target}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  const tensors: ConvertedIndex['tensors'] = {};
  let offset = 0;
  try {
    for (const ref of refs) {
      const values = readTensorAsFloat32(ref);
      const bytes = encode(values, dtype);
      offset = Math.ceil(offset / ALIGN) * ALIGN;
      fs.writeSync(fd, bytes, 0, bytes.length, offset);
      tensors[ref.name] = { offset, shape: [...ref.shape], byteLength: bytes.length };
      offset += bytes.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, target);
  return { identity, dtype, tensors };
}

function encode(values: Float32Array, dtype: WeightDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (dtype !== 'F16') throw new Error(`no conversion to ${dtype}`);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = encodeHalf(values[i]);
  return new Uint8Array(out.buffer);
}
