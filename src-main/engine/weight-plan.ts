import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError } from '../errors.ts';
import { writeAtomically, writeFileAtomically } from '../fs-atomic.ts';
import { recordHashes, reportRefused, verifyHashes } from './cache-check.ts';
import type { Checkpoint } from './checkpoint.ts';
import { WeightConverter } from './convert.ts';
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
 * converted file into `cacheDir`, tensor by tensor (onnxruntime casts them, see convert.ts), and
 * reuse it on later loads.
 */
export async function planWeights(ckpt: Checkpoint, dtype: ComputeType, cacheDir: string): Promise<WeightPlan> {
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
  return convertedPlan(ckpt, refs, dtype, cacheDir);
}

interface ConvertedIndex {
  identity: string;
  dtype: WeightDtype;
  tensors: Record<string, { offset: number; shape: number[]; byteLength: number }>;
  /** sha256 of the converted file as written, checked on every open (cache-check.ts). */
  sha256?: string;
}

async function convertedPlan(ckpt: Checkpoint, refs: TensorRef[], compute: ComputeType, cacheDir: string): Promise<WeightPlan> {
  const dtype = WANTED[compute];
  const file = `weights-${dtype.toLowerCase()}.bin`;
  const indexFile = path.join(cacheDir, `${file}.json`);
  let index = readIndex(indexFile, ckpt.identity, dtype);
  if (index && fs.existsSync(path.join(cacheDir, file))) {
    try {
      verifyHashes([{ file: path.join(cacheDir, file), hash: index.sha256 }], cacheDir, 'the converted weights');
    } catch (e) {
      if (!(e instanceof LogitscopeError && e.code === 'cache_corrupt')) throw e;
      reportRefused(e); // and converted again below
      index = undefined;
    }
  } else {
    index = undefined;
  }
  if (!index) {
    index = await writeConverted(refs, compute, path.join(cacheDir, file), ckpt.identity);
    // Hashing reads the file back once (about 1.2 GB/s); later opens cost a stat (identity.ts's index).
    index.sha256 = recordHashes([path.join(cacheDir, file)], cacheDir)[0];
    writeFileAtomically(indexFile, JSON.stringify(index));
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

async function writeConverted(refs: TensorRef[], compute: ComputeType, target: string, identity: string): Promise<ConvertedIndex> {
  const tensors = await writeAtomically(target, async (partial) => {
    const fd = fs.openSync(partial, 'w');
    const converter = new WeightConverter();
    const placed: ConvertedIndex['tensors'] = {};
    let offset = 0;
    for (const ref of refs) {
      offset = Math.ceil(offset / ALIGN) * ALIGN;
      const byteLength = ref.shape.reduce((a, b) => a * b, 1) * WeightConverter.bytes(compute);
      placed[ref.name] = { offset, shape: [...ref.shape], byteLength };
      offset += byteLength;
    }
    try {
      await converter.convertTensors(refs.map((ref) => ({ ref, offset: placed[ref.name].offset })), compute, fd);
    } finally {
      fs.closeSync(fd);
      await converter.release();
    }
    return placed;
  });
  return { identity, dtype: WANTED[compute], tensors };
}
