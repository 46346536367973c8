import fs from 'node:fs';
import { LogitscopeError } from '../errors.ts';
import { isNonWeightBuffer } from './config.ts';
import { DTYPE_BYTES, type TensorRef, type WeightDtype } from './tensor-ref.ts';

/** What one weight file holds, as far as its header says; shared by the .safetensors and .bin readers. */
export interface WeightFileIndex {
  /** Weights only: non-weight buffers (the causal mask, masked_bias) are left out. */
  readonly tensors: TensorRef[];
  /** The bytes that describe the file's layout (the JSON header, or data.pkl), for checkpoint identity. */
  readonly header: Buffer;
}

/** The reference implementation refuses headers above 100 MB; GPT-J's is about 30 KB. */
const MAX_HEADER_BYTES = 100_000_000;

/** Element sizes of every dtype safetensors defines, so non-weight entries can be checked too. */
const ALL_DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};

function isWeightDtype(d: string): d is WeightDtype {
  return Object.hasOwn(DTYPE_BYTES, d);
}

/**
 * Reads the header of one `.safetensors` file and checks every entry against the file's size,
 * so a cut-short download fails here rather than halfway through a sweep. Reads only the header.
 * `file` should be absolute (TensorRef.file is copied from it).
 */
export function readSafetensorsHeader(file: string): WeightFileIndex {
  const fd = fs.openSync(file, 'r');
  try {
    const fileSize = fs.fstatSync(fd).size;
    const corrupt = (msg: string) => new LogitscopeError('weights_corrupt', msg, file);
    if (fileSize < 8) throw corrupt(`only ${fileSize} bytes: too short to be a safetensors file`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = lenBuf.readBigUInt64LE(0);
    if (headerLen > BigInt(fileSize - 8) || headerLen > BigInt(MAX_HEADER_BYTES)) {
      throw corrupt(`header length ${headerLen} does not fit a ${fileSize}-byte file: not a safetensors file, or a damaged one`);
    }
    const header = Buffer.alloc(Number(headerLen));
    fs.readSync(fd, header, 0, header.length, 8);
    let json: unknown;
    try {
      json = JSON.parse(header.toString('utf8'));
    } catch (e) {
      throw corrupt(`header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw corrupt('header is not a JSON object');
    const dataStart = 8 + header.length;
    const tensors: TensorRef[] = [];
    for (const [name, entry] of Object.entries(json)) {
      if (name === '__metadata__') continue;
      const { dtype, shape, begin, end } = parseEntry(name, entry, corrupt);
      if (dataStart + end > fileSize) {
        throw new LogitscopeError(
          'weights_truncated',
          `tensor "${name}" needs bytes up to ${dataStart + end} but the file has only ${fileSize}: the file is cut short (re-download it)`,
          file,
        );
      }
      if (isNonWeightBuffer(name)) continue;
      if (!isWeightDtype(dtype)) {
        throw new LogitscopeError('weights_dtype_unsupported', `tensor "${name}" is ${dtype}; only F32, F16 and BF16 weights are supported`, file);
      }
      tensors.push({ name, dtype, shape, file, offset: dataStart + begin, byteLength: end - begin });
    }
    return { tensors, header };
  } finally {
    fs.closeSync(fd);
  }
}

function parseEntry(name: string, entry: unknown, corrupt: (msg: string) => Error) {
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (typeof e !== 'object' || e === null || typeof e.dtype !== 'string') throw corrupt(`tensor "${name}" has no dtype`);
  if (!Array.isArray(e.shape) || !e.shape.every(isCount)) throw corrupt(`tensor "${name}" has an invalid shape`);
  const offs = e.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isCount) || offs[0] > offs[1]) {
    throw corrupt(`tensor "${name}" has invalid data_offsets ${JSON.stringify(offs)}`);
  }
  // Checked for every known dtype, masks included: a wrong span means a damaged header.
  if (Object.hasOwn(ALL_DTYPE_BYTES, e.dtype)) checkByteLength(name, e.dtype, e.shape as number[], offs[1] - offs[0], corrupt);
  return { dtype: e.dtype, shape: e.shape as number[], begin: offs[0] as number, end: offs[1] as number };
}

function checkByteLength(name: string, dtype: string, shape: readonly number[], byteLength: number, corrupt: (msg: string) => Error) {
  const want = shape.reduce((a, b) => a * b, 1) * ALL_DTYPE_BYTES[dtype];
  if (want !== byteLength) {
    throw corrupt(`tensor "${name}" (${dtype} [${shape.join(', ')}]) should take ${want} bytes but its data_offsets span ${byteLength}`);
  }
}
