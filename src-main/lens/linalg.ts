/**
 * Float64 linear algebra of the tuned-lens fit: a blocked Cholesky factorisation and the two
 * triangular solves with d right-hand sides. The O(d³) work is all in matrix products handed to a
 * `Gemm` (onnxruntime's float64 MatMul in the app); JavaScript does only the panel work, O(d·nb²)
 * per panel: factor and invert one nb × nb diagonal block. With nb = 256 and d = 4096 (GPT-J) that
 * is 16 panels of ~6 M flops each in JS against ~1.6·10¹¹ flops in the products.
 *
 * Matrices are dense row-major Float64Arrays.
 */
import { LogitscopeError } from '../errors.ts';

/** c − a·b for a [m, k], b [k, n], c [m, n]; returns a new [m, n] array. */
export type Gemm = (a: Float64Array, b: Float64Array, c: Float64Array, m: number, k: number, n: number) => Promise<Float64Array>;

/** The products in plain JavaScript: for tests, and for tiny blocks where a session call costs more than it saves. */
export const jsGemm: Gemm = async (a, b, c, m, k, n) => {
  const out = Float64Array.from(c);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] -= aip * b[p * n + j];
    }
  }
  return out;
};

/** Block [r0, r1) × [c0, c1) of a row-major matrix with `cols` columns, copied out. */
export function block(a: Float64Array, cols: number, r0: number, r1: number, c0: number, c1: number): Float64Array {
  const w = c1 - c0;
  const out = new Float64Array((r1 - r0) * w);
  for (let i = r0; i < r1; i++) out.set(a.subarray(i * cols + c0, i * cols + c1), (i - r0) * w);
  return out;
}

function putBlock(a: Float64Array, cols: number, r0: number, c0: number, src: Float64Array, rows: number, w: number): void {
  for (let i = 0; i < rows; i++) a.set(src.subarray(i * w, (i + 1) * w), (r0 + i) * cols + c0);
}

function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j];
  return out;
}

/** The lower Cholesky factor of a small SPD block [n, n], in JS (n ≤ the panel width). */
export function choleskySmall(a: Float64Array, n: number, what: string): Float64Array {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let s = a[j * n + j];
    for (let p = 0; p < j; p++) s -= l[j * n + p] * l[j * n + p];
    if (!(s > 0)) throw new LogitscopeError('numerics_nonfinite', `${what}: the regularised covariance is not positive definite (pivot ${j} is ${s})`, 'numerics');
    const ljj = Math.sqrt(s);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let t = a[i * n + j];
      for (let p = 0; p < j; p++) t -= l[i * n + p] * l[j * n + p];
      l[i * n + j] = t / ljj;
    }
  }
  return l;
}

/** The inverse of a small lower-triangular block [n, n] (lower triangular too), by forward substitution. */
export function invertLowerSmall(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    inv[c * n + c] = 1 / l[c * n + c];
    for (let i = c + 1; i < n; i++) {
      let s = 0;
      for (let p = c; p < i; p++) s -= l[i * n + p] * inv[p * n + c];
      inv[i * n + c] = s / l[i * n + i];
    }
  }
  return inv;
}

/**
 * Solves A·W = B for SPD A [d, d] and B [d, r] by a right-looking blocked Cholesky A = L·Lᵀ,
 * then L·Z = B and Lᵀ·W = Z block row by block row. Each diagonal block is factored and inverted
 * in JS (inverting a well-conditioned nb × nb triangle costs nothing in accuracy next to the
 * ridge); every off-diagonal product goes through `gemm`. Returns W [d, r]. `a` is overwritten.
 */
export async function choleskySolve(a: Float64Array, bRhs: Float64Array, d: number, r: number, gemm: Gemm, opts: { panel?: number; what?: string } = {}): Promise<Float64Array> {
  const nb = opts.panel ?? 256;
  const what = opts.what ?? 'the tuned-lens solve';
  const inverses: Float64Array[] = []; // inv(L_kk) per panel
  // Factor: for each panel, L_kk = chol(A_kk), L_ik = A_ik·L_kk⁻ᵀ, then A_trailing −= L_ik·L_ikᵀ.
  for (let k0 = 0; k0 < d; k0 += nb) {
    const k1 = Math.min(k0 + nb, d);
    const w = k1 - k0;
    const lkk = choleskySmall(block(a, d, k0, k1, k0, k1), w, what);
    putBlock(a, d, k0, k0, lkk, w, w);
    const inv = invertLowerSmall(lkk, w);
    inverses.push(inv);
    if (k1 === d) break;
    const m = d - k1;
    const panel = block(a, d, k1, d, k0, k1); // [m, w]
    // L_ik = A_ik · inv(L_kk)ᵀ, written as c − a·b with c = 0 and a negated.
    const lik = await gemm(panel, transpose(inv, w, w), new Float64Array(m * w), m, w, w);
    for (let i = 0; i < lik.length; i++) lik[i] = -lik[i];
    putBlock(a, d, k1, k0, lik, m, w);
    const trailing = await gemm(lik, transpose(lik, m, w), block(a, d, k1, d, k1, d), m, w, m);
    putBlock(a, d, k1, k1, trailing, m, m);
  }
  const panels = inverses.length;
  const start = (p: number) => p * nb;
  const end = (p: number) => Math.min((p + 1) * nb, d);
  // Forward: Z_p = inv(L_pp) · (B_p − L_p,<p · Z_<p).
  const z = new Float64Array(d * r);
  for (let p = 0; p < panels; p++) {
    const p0 = start(p);
    const p1 = end(p);
    const w = p1 - p0;
    let rhs = block(bRhs, r, p0, p1, 0, r);
    if (p0 > 0) rhs = await gemm(block(a, d, p0, p1, 0, p0), z.subarray(0, p0 * r), rhs, w, p0, r);
    const zp = await gemm(inverses[p], rhs, new Float64Array(w * r), w, w, r);
    for (let i = 0; i < zp.length; i++) zp[i] = -zp[i];
    z.set(zp, p0 * r);
  }
  // Backward: W_p = inv(L_pp)ᵀ · (Z_p − (L_>p,p)ᵀ · W_>p).
  const wOut = new Float64Array(d * r);
  for (let p = panels - 1; p >= 0; p--) {
    const p0 = start(p);
    const p1 = end(p);
    const w = p1 - p0;
    let rhs = block(z, r, p0, p1, 0, r);
    if (p1 < d) rhs = await gemm(transpose(block(a, d, p1, d, p0, p1), d - p1, w), wOut.subarray(p1 * r), rhs, w, d - p1, r);
    const wp = await gemm(transpose(inverses[p], w, w), rhs, new Float64Array(w * r), w, w, r);
    for (let i = 0; i < wp.length; i++) wp[i] = -wp[i];
    wOut.set(wp, p0 * r);
  }
  return wOut;
}
