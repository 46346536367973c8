/**
 * The float64 reference is what the ONNX engine is judged by, so it gets its own checks: properties
 * any correct GPT-J forward has, and small cases recomputed here in a different style.
 */
import { describe, expect, it } from 'vitest';
import { blockWeightNames, expectedWeightShapes, type GptjConfig } from '../src-main/engine/config.ts';
import { applyRotary, logSoftmax, referenceForward, referenceLogitLens, type Weights } from './reference/gptj-f64.ts';
import { mulberry32 } from '../src-main/data/shuffle.ts';

const config: GptjConfig = {
  nLayers: 2,
  dModel: 16,
  nHeads: 2,
  dHead: 8,
  dMlp: 64,
  nCtx: 32,
  rotaryDim: 4, // half of each head, so the pass-through dims are exercised too
  dVocab: 50,
  layerNormEps: 1e-5,
  bosTokenId: 0,
};


/** Every weight the config implies, uniform in ±0.5 (LayerNorm gains around 1), large enough that attention is not uniform. */
function randomWeights(c: GptjConfig, seed: number): Map<string, Float64Array> {
  const rand = mulberry32(seed);
  const weights = new Map<string, Float64Array>();
  for (const [name, shape] of expectedWeightShapes(c)) {
    const gain = /ln_\w+\.weight$/.test(name) ? 1 : 0;
    weights.set(name, Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => gain + (rand() - 0.5)));
  }
  return weights;
}

const weights = randomWeights(config, 1);
const tokens = [3, 17, 42, 8, 25, 11];
const base = referenceForward({ config, weights, tokens });

// Plain helpers for the recomputations below, deliberately not imported from the reference.
const matVec = (w: Float64Array, x: ArrayLike<number>, rows: number) =>
  Array.from({ length: rows }, (_, r) => Array.from(x).reduce((s, xi, i) => s + w[r * x.length + i] * xi, 0));
const add = (...vs: ArrayLike<number>[]) => Array.from(vs[0], (_, i) => vs.reduce((s, v) => s + v[i], 0));
function ln(x: ArrayLike<number>, g: Float64Array, b: Float64Array): number[] {
  const xs = Array.from(x);
  const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
  const variance = xs.reduce((s, v) => s + (v - mean) ** 2, 0) / xs.length;
  return xs.map((v, i) => ((v - mean) / Math.sqrt(variance + config.layerNormEps)) * g[i] + b[i]);
}
const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
const w = (name: string) => weights.get(name)!;

/** GPT-J rotary as complex numbers: pair i is x[2i] + i·x[2i+1], multiplied by e^{i·position·θ_i}. */
function rotaryComplex(x: ArrayLike<number>, position: number, rotaryDim: number): number[] {
  const out = Array.from(x);
  for (let i = 0; i < rotaryDim / 2; i++) {
    const theta = position * Math.pow(10000, -(2 * i) / rotaryDim);
    const [re, im] = [x[2 * i], x[2 * i + 1]];
    out[2 * i] = re * Math.cos(theta) - im * Math.sin(theta);
    out[2 * i + 1] = re * Math.sin(theta) + im * Math.cos(theta);
  }
  return out;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i]), `index ${i}`).toBeLessThan(tol);
}

describe('the float64 GPT-J reference', () => {
  it('returns embeddings, every layer and logits with the documented shapes', () => {
    expect(base.embeddings).toHaveLength(tokens.length);
    expect(base.embeddings[1]).toEqual(w('transformer.wte.weight').slice(17 * 16, 18 * 16));
    expect(base.residPost).toHaveLength(config.nLayers);
    for (const layer of base.residPost) expect(layer.map((v) => v.length)).toEqual(tokens.map(() => config.dModel));
    expect(base.logits.map((v) => v.length)).toEqual(tokens.map(() => config.dVocab));
  });

  it('is causal: changing a later token leaves earlier positions unchanged', () => {
    const changed = referenceForward({ config, weights, tokens: [...tokens.slice(0, 4), 49, ...tokens.slice(5)] });
    for (let l = 0; l < config.nLayers; l++) {
      expect(changed.residPost[l].slice(0, 4)).toEqual(base.residPost[l].slice(0, 4));
      expect(changed.residPost[l][4]).not.toEqual(base.residPost[l][4]);
    }
    expect(changed.logits.slice(0, 4)).toEqual(base.logits.slice(0, 4));
    // Position 5 kept its token but attends to the changed one.
    expect(changed.residPost[0][5]).not.toEqual(base.residPost[0][5]);
  });

  it('changes nothing when patched with the unpatched residual, at every layer including the embeddings', () => {
    for (let layer = -1; layer < config.nLayers; layer++) {
      const position = 2;
      const vector = layer === -1 ? base.embeddings[position] : base.residPost[layer][position];
      const patched = referenceForward({ config, weights, tokens, patch: { layer, position, vector } });
      expect(patched).toEqual(base);
    }
  });

  it('writes the patch into the output of its block, which later positions and later blocks see', () => {
    const vector = Float64Array.from({ length: config.dModel }, (_, i) => Math.sin(i));
    const patched = referenceForward({ config, weights, tokens, patch: { layer: 0, position: 2, vector } });
    expect(patched.residPost[0][2]).toEqual(vector);
    expect(patched.embeddings).toEqual(base.embeddings);
    expect(patched.residPost[0].slice(0, 2)).toEqual(base.residPost[0].slice(0, 2));
    expect(patched.residPost[0].slice(3)).toEqual(base.residPost[0].slice(3));
    expect(patched.residPost[1].slice(0, 2)).toEqual(base.residPost[1].slice(0, 2));
    for (let p = 2; p < tokens.length; p++) expect(patched.residPost[1][p]).not.toEqual(base.residPost[1][p]);
  });

  it('patched at the last layer at position p gives logits[p] equal to the logit lens of the vector', () => {
    const vector = Float64Array.from({ length: config.dModel }, (_, i) => Math.cos(3 * i));
    const last = config.nLayers - 1;
    const patched = referenceForward({ config, weights, tokens, patch: { layer: last, position: 3, vector } });
    expect(patched.logits[3]).toEqual(referenceLogitLens(config, weights, vector));
    expect(patched.logits[4]).toEqual(base.logits[4]);
    expect(base.logits[3]).toEqual(referenceLogitLens(config, weights, base.residPost[last][3]));
  });

  it('matches a one-layer, one-token forward computed by hand (parallel residual: attention and MLP both read ln_1(h))', () => {
    const one = { ...config, nLayers: 1 };
    const b = blockWeightNames(0);
    const h0 = w('transformer.wte.weight').slice(7 * 16, 8 * 16);
    const x = ln(h0, w(b.ln1Weight), w(b.ln1Bias));
    // One token attends only to itself with weight 1, and rotary turns q and k alike, so attention is out_proj(v).
    const attn = matVec(w(b.outProj), matVec(w(b.vProj), x, 16), 16);
    const mlp = add(matVec(w(b.fcOut), add(matVec(w(b.fcIn), x, 64), w(b.fcInBias)).map(gelu), 16), w(b.fcOutBias));
    const h1 = add(h0, attn, mlp);
    const logits = add(matVec(w('lm_head.weight'), ln(h1, w('transformer.ln_f.weight'), w('transformer.ln_f.bias')), 50), w('lm_head.bias'));

    const ref = referenceForward({ config: one, weights, tokens: [7] });
    expectClose(ref.residPost[0][0], h1);
    expectClose(ref.logits[0], logits);
  });

  it('matches a one-layer, two-token attention computed with complex-number rotary', () => {
    const one = { ...config, nLayers: 1 };
    const b = blockWeightNames(0);
    const wte = w('transformer.wte.weight');
    const h = [wte.slice(5 * 16, 6 * 16), wte.slice(9 * 16, 10 * 16)];
    const x = h.map((hp) => ln(hp, w(b.ln1Weight), w(b.ln1Bias)));
    const [q, k, v] = [b.qProj, b.kProj, b.vProj].map((name) => x.map((xp) => matVec(w(name), xp, 16)));
    // Position 1, each head: scores against positions 0 and 1, scaled by sqrt(dHead), softmax, weighted v.
    const z: number[] = [];
    for (let n = 0; n < 2; n++) {
      const slice = (vec: number[]) => vec.slice(n * 8, n * 8 + 8);
      const q1 = rotaryComplex(slice(q[1]), 1, 4);
      const scores = [0, 1].map((s) => rotaryComplex(slice(k[s]), s, 4).reduce((acc, ks, d) => acc + ks * q1[d], 0) / Math.sqrt(8));
      const e = scores.map((s) => Math.exp(s - Math.max(...scores)));
      const a = e.map((ei) => ei / (e[0] + e[1]));
      z.push(...slice(v[0]).map((v0, d) => a[0] * v0 + a[1] * slice(v[1])[d]));
    }
    const attn = matVec(w(b.outProj), z, 16);
    const mlp = add(matVec(w(b.fcOut), add(matVec(w(b.fcIn), x[1], 64), w(b.fcInBias)).map(gelu), 16), w(b.fcOutBias));

    const ref = referenceForward({ config: one, weights, tokens: [5, 9] });
    expectClose(ref.residPost[0][1], add(h[1], attn, mlp));
  });
});

describe('the reference rotary helper', () => {
  const x = Float64Array.from({ length: 8 }, (_, i) => 0.3 * i - 1);

  it('rotates interleaved pairs (2i, 2i+1) like complex numbers, leaving dims past rotaryDim alone', () => {
    for (const position of [0, 1, 5, 37]) {
      expectClose(applyRotary(x, position, 4), rotaryComplex(x, position, 4));
      expect(applyRotary(x, position, 4).slice(4)).toEqual(x.slice(4));
    }
    expect(applyRotary(x, 0, 8)).toEqual(x);
  });

  it('differs from the rotate-half convention, so the check above can tell the two apart', () => {
    // GPT-NeoX / Llama pair dim i with dim i + rotaryDim/2.
    const half = Array.from(x);
    for (let i = 0; i < 2; i++) {
      const theta = 3 * Math.pow(10000, -(2 * i) / 4);
      half[i] = x[i] * Math.cos(theta) - x[i + 2] * Math.sin(theta);
      half[i + 2] = x[i + 2] * Math.cos(theta) + x[i] * Math.sin(theta);
    }
    const diff = Array.from(applyRotary(x, 3, 4)).map((v, i) => Math.abs(v - half[i]));
    expect(Math.max(...diff)).toBeGreaterThan(0.1);
  });

  it('makes the query-key score depend only on the distance between positions', () => {
    const k = Float64Array.from({ length: 8 }, (_, i) => Math.cos(i));
    const score = (pq: number, pk: number) => {
      const [qr, kr] = [applyRotary(x, pq, 8), applyRotary(k, pk, 8)];
      return qr.reduce((s, qi, i) => s + qi * kr[i], 0);
    };
    expect(score(7, 3)).toBeCloseTo(score(104, 100), 10);
    expect(Math.abs(score(7, 3) - score(7, 4))).toBeGreaterThan(1e-3);
  });
});

describe('the reference logit lens and log-softmax', () => {
  it('normalises with the population variance before the head', () => {
    const c: GptjConfig = { ...config, dModel: 4, dVocab: 4 };
    const identity = Float64Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0));
    const lens: Weights = new Map([
      ['transformer.ln_f.weight', Float64Array.of(1, 1, 1, 1)],
      ['transformer.ln_f.bias', Float64Array.of(0, 0, 0, 0)],
      ['lm_head.weight', identity],
      ['lm_head.bias', Float64Array.of(0, 0, 0, 10)],
    ]);
    // mean 2.5, variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    const s = 1 / Math.sqrt(1.25 + 1e-5);
    expectClose(referenceLogitLens(c, lens, Float64Array.of(1, 2, 3, 4)), [-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s + 10]);
  });

  it('log-softmax sums to one in probability and survives large logits', () => {
    const v = Float64Array.of(1000, 1001, 999, -50);
    const lp = logSoftmax(v);
    expect(lp.reduce((s, x) => s + Math.exp(x), 0)).toBeCloseTo(1, 12);
    expectClose(lp, logSoftmax(v.map((x) => x - 1000)));
    expect(lp[1]).toBeCloseTo(-Math.log(1 + Math.exp(-1) + Math.exp(-2)), 12);
  });
});
