/** Where one checkpoint tensor lives on disk, so graphs can point at it without copying. */
export type WeightDtype = 'F32' | 'F16' | 'BF16';

export const DTYPE_BYTES: Record<WeightDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface TensorRef {
  readonly name: string;
  readonly dtype: WeightDtype;
  readonly shape: readonly number[];
  /** Absolute path of the file holding the bytes (a .safetensors file or a .bin zip). */
  readonly file: string;
  /** Absolute byte offset of the first element in `file`; elements are contiguous, row-major, little-endian. */
  readonly offset: number;
  readonly byteLength: number;
}
