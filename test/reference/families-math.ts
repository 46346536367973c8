/**
 * The float64 building blocks the family reference shares: norms, rotary "rotate half", activations,
 * soft-capping and causal attention with grouped-query heads and sliding windows. Plain loops, each
 * written from the Hugging Face modelling code named in its comment. GPT-J's helpers (LayerNorm,
 * gelu_new, Linear, log-softmax) are reused from gptj-f64.ts.
 */
import { geluNew, layerNorm, linear, logSoftmax } from './gptj-f64.ts';
import type { Activation, NormKind } from './families-config.ts';

export { geluNew, layerNorm, linear, logSoftmax };

/**
 * RMSNorm: x / sqrt(mean(x²) + eps), times w (LlamaRMSNorm) or (1 + w) (Gemma2RMSNorm). HF computes
 * the norm in float32 even in a float64 model; here everything stays float64.
 */
export function rmsNorm(x: Float64Array, w: Float64Array, eps: number, onePlus: boolean): Float64Array {
  let ms = 0;
  for (let i = 0; i < x.length; i++) ms += x[i] * x[i];
  const inv = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, i) => v * inv * (onePlus ? 1 + w[i] : w[i]));
}

/** One norm of the family's kind; `b` only for LayerNorm. */
export function norm(kind: NormKind, x: Float64Array, w: Float64Array, b: Float64Array | null, eps: number): Float64Array {
  if (kind === 'layer') return layerNorm(x, w, b!, eps);
  return rmsNorm(x, w, eps, kind === 'rms_one_plus');
}

/** y = x W (+ b) with W in GPT-2's Conv1D layout [in, out], row-major. */
export function conv1d(w: Float64Array, x: Float64Array, outDim: number, bias: Float64Array): Float64Array {
  const y = Float64Array.from(bias);
  for (let i = 0; i < x.length; i++) {
    for (let o = 0; o < outDim; o++) y[o] += x[i] * w[i * outDim + o];
  }
  return y;
}

/**
 * RoPE in the "rotate half" layout (Llama, Mistral, Qwen2, Gemma 2, GPT-NeoX): with r = 2 ·
 * invFreq.length rotated dims, dims i and i + r/2 form pair i, rotated by position · invFreq[i]; dims
 * from r on pass through (GPT-NeoX's partial rotary). HF: `q * cos + rotate_half(q) * sin` with
 * cos = cat(freqs, freqs) and rotate_half(x) = cat(-x2, x1). (GPT-J pairs (2i, 2i+1) instead.)
 */
export function rotateHalf(head: Float64Array, position: number, invFreq: Float64Array): Float64Array {
  const half = invFreq.length;
  const out = Float64Array.from(head);
  for (let i = 0; i < half; i++) {
    const angle = position * invFreq[i];
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    out[i] = head[i] * cos - head[i + half] * sin;
    out[i + half] = head[i + half] * cos + head[i] * sin;
  }
  return out;
}

/**
 * erf(x) = 2/√π · e^{-x²} · Σ_n 2ⁿ x^{2n+1} / (1·3·…·(2n+1)): every term positive, so no cancellation;
 * past |x| = 6, erf is ±1 to double precision.
 */
export function erf(x: number): number {
  if (Math.abs(x) > 6) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

export function activate(act: Activation, x: number): number {
  switch (act) {
    case 'silu':
      return x / (1 + Math.exp(-x));
    case 'gelu_tanh': // gelu_new, gelu_pytorch_tanh: the same tanh approximation
      return geluNew(x);
    case 'gelu_erf': // nn.GELU(): GPT-NeoX's "gelu"
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
  }
}

/** Gemma 2's soft-cap: cap · tanh(x / cap); no cap leaves x alone. */
export function softcap(x: number, cap: number | null): number {
  return cap === null ? x : cap * Math.tanh(x / cap);
}

export interface AttentionSpec {
  nHeads: number;
  /** Query head n reads key/value head floor(n / (nHeads / nKvHeads)), as HF's repeat_kv lays them out. */
  nKvHeads: number;
  dHead: number;
  scale: number;
  softcap: number | null;
  /** Position p sees positions p - window + 1 .. p (HF's sliding_window_overlay: kv > q - window). */
  window: number | null;
}

/**
 * Causal softmax attention over all positions. q: [T][nHeads] -> dHead, already rotated; k: [T][nKvHeads]
 * -> dHead, rotated; v: [T][nKvHeads] -> dHead. Returns [T] -> nHeads·dHead, heads side by side (before
 * the output projection). Score = softcap(q·k · scale), as Gemma 2's eager attention orders it.
 */
export function causalAttention(s: AttentionSpec, q: Float64Array[][], k: Float64Array[][], v: Float64Array[][]): Float64Array[] {
  const group = s.nHeads / s.nKvHeads;
  if (!Number.isInteger(group)) throw new Error(`reference: ${s.nHeads} heads do not split over ${s.nKvHeads} kv heads`);
  return q.map((qp, p) => {
    const z = new Float64Array(s.nHeads * s.dHead);
    const first = s.window === null ? 0 : Math.max(0, p - s.window + 1);
    for (let n = 0; n < s.nHeads; n++) {
      const kv = Math.floor(n / group);
      const scores = new Float64Array(p + 1 - first);
      for (let t = first; t <= p; t++) {
        let dot = 0;
        for (let i = 0; i < s.dHead; i++) dot += qp[n][i] * k[t][kv][i];
        scores[t - first] = softcap(dot * s.scale, s.softcap);
      }
      const logProbs = logSoftmax(scores);
      for (let t = first; t <= p; t++) {
        const a = Math.exp(logProbs[t - first]);
        for (let i = 0; i < s.dHead; i++) z[n * s.dHead + i] += a * v[t][kv][i];
      }
    }
    return z;
  });
}

/** Splits a projection into `n` heads of `dHead`, starting at `offset` with heads `stride` apart. */
export function heads(x: Float64Array, n: number, dHead: number, offset = 0, stride = dHead): Float64Array[] {
  return Array.from({ length: n }, (_, h) => x.slice(offset + h * stride, offset + h * stride + dHead));
}
