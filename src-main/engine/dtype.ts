import type { WeightDtype } from './tensor-ref.ts';

/**
 * Codecs for the 16-bit float formats checkpoints use. Node 20 has no Float16Array, so 16-bit
 * values travel as Uint16Array bits. Encoders round to nearest, ties to even, straight from the
 * float64 value (going through float32 first would round twice).
 */

const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

export function decodeHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

export function decodeBf16(bits: number): number {
  // bf16 is the top half of a float32.
  U32_SCRATCH[0] = (bits & 0xffff) << 16;
  return F32_SCRATCH[0];
}

/** Round-to-nearest-even encoder for a binary float with `expBits` exponent and `mantBits` fraction bits. */
function encodeBinaryFloat(x: number, expBits: number, mantBits: number, nanBits: number): number {
  const signBit = 1 << (expBits + mantBits);
  if (Number.isNaN(x)) return nanBits;
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  const a = Math.abs(x);
  const bias = (1 << (expBits - 1)) - 1;
  const infBits = sign | (((1 << expBits) - 1) << mantBits);
  if (a === Infinity) return infBits;
  const eMin = 1 - bias;
  if (a < 2 ** eMin) {
    // Subnormal: rounding up to 2^mantBits lands exactly on the smallest normal's bit pattern.
    return sign | roundHalfEven(a * 2 ** (mantBits - eMin));
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // log2 may be off by one near powers of two
  else if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven(a * 2 ** (mantBits - e)); // in [2^mantBits, 2^(mantBits+1)]
  if (m === 2 ** (mantBits + 1)) {
    e++;
    m /= 2;
  }
  if (e > bias) return infBits;
  return sign | ((e + bias) << mantBits) | (m - 2 ** mantBits);
}

/** `v` is exact (a power-of-two scaling of a double), so the fraction test is exact too. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5 || (d === 0.5 && f % 2 === 1)) return f + 1;
  return f;
}

export function encodeHalf(x: number): number {
  return encodeBinaryFloat(x, 5, 10, 0x7e00);
}

export function encodeBf16(x: number): number {
  return encodeBinaryFloat(x, 8, 7, 0x7fc0);
}

let halfTable: Float32Array | undefined;

/** Decodes little-endian element bytes into `out` (length = element count). */
export function decodeInto(dtype: WeightDtype, bytes: Uint8Array, out: Float32Array | Float64Array): void {
  const n = out.length;
  if (dtype === 'F32') {
    const src = new Float32Array(bytes.buffer, bytes.byteOffset, n);
    if (src !== out) out.set(src);
    return;
  }
  const bits = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  if (dtype === 'F16') {
    // A table makes 200M-element embeddings decode in about a second.
    if (!halfTable) {
      halfTable = new Float32Array(65536);
      for (let b = 0; b < 65536; b++) halfTable[b] = decodeHalf(b);
    }
    const t = halfTable;
    for (let i = 0; i < n; i++) out[i] = t[bits[i]];
    return;
  }
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) {
    u[0] = bits[i] << 16;
    out[i] = f[0];
  }
}
