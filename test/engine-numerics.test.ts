import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { blockWeightNames, expectedWeightShapes, parseGptjConfig, type GptjConfig } from '../src-main/engine/config.ts';
import { cudaProviderInstalled } from '../src-main/engine/cuda-provider.ts';
import { decodeHalf, encodeHalf } from '../src-main/engine/dtype.ts';
import { Engine, residRow } from '../src-main/engine/engine.ts';
import { readTensorAsFloat64 } from '../src-main/engine/checkpoint.ts';
import { type RawTensor, writeSafetensors, writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { applyRotary, layerNorm, logSoftmax, referenceForward, referenceLogitLens, type ReferenceResult } from './reference/gptj-f64.ts';

const TOL = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-numerics-'));
const cacheRoot = path.join(tmp, 'cache');

describe('the ONNX engine on a tiny fp32 safetensors checkpoint', () => {
  let engine: Engine;
  let config: GptjConfig;
  let weights: ReadonlyMap<string, Float64Array>;
  const tokens = [50256, 464, 3797, 3332, 319, 262, 2603, 13, 198, 40, 588];

  beforeAll(async () => {
    const ckpt = writeTinyGptj({ dir: path.join(tmp, 'st'), format: 'safetensors', seed: 1 });
    config = parseGptjConfig(ckpt.config, 'config.json');
    weights = ckpt.weights;
    engine = await Engine.load({ modelDir: ckpt.dir, cacheRoot });
  });
  afterAll(async () => engine?.dispose());

  test('resid_post of every layer and the final logits match the float64 reference within 1e-4', async () => {
    const ref = referenceForward({ config, weights, tokens });
    for (const position of [0, 4, tokens.length - 1]) {
      const src = await engine.sourcePass([{ tokens, position }]);
      expect(maxAbsDiff(residRow(src, -1, 0, config.dModel), ref.embeddings[position])).toBeLessThan(TOL);
      for (let l = 0; l < config.nLayers; l++) {
        expect(maxAbsDiff(residRow(src, l, 0, config.dModel), ref.residPost[l][position])).toBeLessThan(TOL);
      }
      expect(maxAbsDiff(src.logits, ref.logits[position])).toBeLessThan(TOL);
    }
  });

  test('a batch of prompts of different lengths gives each prompt its own unbatched numbers', async () => {
    const items = [
      { tokens: tokens.slice(0, 3), position: 2 },
      { tokens, position: 9 },
      { tokens: tokens.slice(2, 8), position: 1 },
    ];
    const batched = await engine.sourcePass(items);
    for (const [b, it] of items.entries()) {
      const ref = referenceForward({ config, weights, tokens: it.tokens });
      for (let l = -1; l < config.nLayers; l++) {
        const want = l < 0 ? ref.embeddings[it.position] : ref.residPost[l][it.position];
        expect(maxAbsDiff(residRow(batched, l, b, config.dModel), want)).toBeLessThan(TOL);
      }
    }
  });

  test('the fast patched run matches a full patched forward of the reference at every layer, with and without a prefix', async () => {
    const src = referenceForward({ config, weights, tokens });
    const vector = src.residPost[1][6];
    for (const target of [[50256, 9246, 4613, 3797, 198, 30], [50256, 30], [30]]) {
      const prefix = await engine.prefix(target);
      const layers = [-1, 0, 1, config.nLayers - 1];
      const vectors = new Float32Array(layers.length * config.dModel);
      layers.forEach((_, i) => vectors.set(vector, i * config.dModel));
      // Rows in a deliberately unsorted order: the engine must give them back in the order asked.
      const order = [2, 0, 3, 1];
      const finals = await engine.patched({ prefix, vectors, injectLayers: order.map((i) => layers[i]) });
      order.forEach((i, row) => {
        const layer = layers[i];
        const patched = referenceForward({ config, weights, tokens: target, patch: { layer, position: target.length - 1, vector } });
        const want = layer === config.nLayers - 1 ? vector : patched.residPost[config.nLayers - 1][target.length - 1];
        expect(maxAbsDiff(finals.subarray(row * config.dModel, (row + 1) * config.dModel), want)).toBeLessThan(TOL);
      });
    }
  });

  test('the naive patched run matches the reference patched forward', async () => {
    const target = [50256, 9246, 4613, 30];
    const vector = referenceForward({ config, weights, tokens }).residPost[0][3];
    for (const layer of [-1, 0, 2]) {
      const got = await engine.naivePatched({ targetTokens: target, layer, vector: Float32Array.from(vector) });
      const want = referenceForward({ config, weights, tokens: target, patch: { layer, position: 3, vector } }).residPost[config.nLayers - 1][3];
      expect(maxAbsDiff(got, want)).toBeLessThan(TOL);
    }
  });

  test('unembedding gives the reference top-k and the reference log-probability of the chosen token', async () => {
    const ref = referenceForward({ config, weights, tokens });
    const h = ref.residPost[1][5];
    const want = logSoftmax(referenceLogitLens(config, weights, h));
    const order = Array.from(want.keys()).sort((a, b) => want[b] - want[a]);
    const out = await engine.unembed({ resid: Float32Array.from(h), referenceIds: [order[7]], k: 5 });
    expect(Array.from(out.topkIds)).toEqual(order.slice(0, 5));
    expect(maxAbsDiff(out.topkLogprobs, order.slice(0, 5).map((i) => want[i]))).toBeLessThan(TOL);
    expect(Math.abs(out.referenceLogprob[0] - want[order[7]])).toBeLessThan(TOL);
  });

  test('the entropy of the full next-token distribution matches the float64 reference within 1e-4 nats, by unembed and inside a batch', async () => {
    // The entropy (≤ ln 50400 ≈ 10.8 nats) is an fp32 sum of 50400 terms p·(logit − lse); its
    // rounding is a few 1e-6 relative (measured: 4.2e-5 nats at most here, entropies ≈ 10.3), so 1e-4 nats.
    const entropyOf = (h: ArrayLike<number>) => {
      const lp = logSoftmax(referenceLogitLens(config, weights, Float64Array.from(h)));
      return -lp.reduce((s, v) => s + Math.exp(v) * v, 0);
    };
    const ref = referenceForward({ config, weights, tokens });
    const p = tokens.length - 1;
    const rows = [ref.embeddings[p], ...ref.residPost.map((r) => r[p]), ref.residPost[1][3]];
    const want = rows.map(entropyOf);
    // The rows differ: a test of one number could not tell a constant from the entropy.
    expect(Math.max(...want) - Math.min(...want)).toBeGreaterThan(0.01);
    const resid = new Float32Array(rows.length * config.dModel);
    rows.forEach((r, i) => resid.set(r, i * config.dModel));
    const out = await engine.unembed({ resid, referenceIds: rows.map(() => 0), k: 1 });
    expect(maxAbsDiff(out.measures.entropy, want)).toBeLessThan(1e-4);
    // The batch op: logit-lens rows of every layer at the last position, from the engine's own source pass.
    const layers = [-1, ...Array.from({ length: config.nLayers }, (_, l) => l)];
    const batch = await engine.extractBatch({
      items: [{ tokens, position: p }],
      names: ['the prompt'],
      techniques: [{ id: 'logit_lens', prefixTokens: null, example: layers.map(() => 0), sourceLayer: layers, injectLayer: [] }],
      k: 1,
      maxUnembedRows: 3,
      measures: true,
    });
    expect(maxAbsDiff(batch.measures!.entropy, layers.map((l) => entropyOf(l < 0 ? ref.embeddings[p] : ref.residPost[l][p])))).toBeLessThan(1e-4);
  });

  test('patching a position with its own residual changes nothing', async () => {
    const ref = referenceForward({ config, weights, tokens });
    const p = 5;
    const target = tokens.slice(0, p + 1);
    const prefix = await engine.prefix(target);
    for (const layer of [-1, 0, 1]) {
      const own = layer < 0 ? ref.embeddings[p] : ref.residPost[layer][p];
      const [fast, naive] = [
        await engine.patched({ prefix, vectors: Float32Array.from(own), injectLayers: [layer] }),
        await engine.naivePatched({ targetTokens: target, layer, vector: Float32Array.from(own) }),
      ];
      expect(maxAbsDiff(fast, ref.residPost[config.nLayers - 1][p])).toBeLessThan(TOL);
      expect(maxAbsDiff(naive, ref.residPost[config.nLayers - 1][p])).toBeLessThan(TOL);
    }
  });

  test('inputs are checked before any compute, with the field and what is wrong', async () => {
    const before = { ...engine.stats };
    await expect(engine.sourcePass([{ tokens, position: tokens.length }])).rejects.toMatchObject({ code: 'position_out_of_range' });
    await expect(engine.sourcePass([{ tokens: [1, 60000], position: 0 }])).rejects.toMatchObject({ code: 'token_out_of_range' });
    const tooLong = Array.from({ length: config.nCtx + 1 }, () => 11);
    await expect(engine.sourcePass([{ tokens: tooLong, position: 3 }])).rejects.toMatchObject({ code: 'prompt_too_long' });
    expect(() => engine.tokenize('word '.repeat(config.nCtx + 5), { bos: false })).toThrow(/n_positions/);
    expect(() => engine.tokenize('', { bos: false })).toThrow(expect.objectContaining({ code: 'prompt_empty' }));
    const prefix = await engine.prefix([30]);
    await expect(engine.patched({ prefix, vectors: new Float32Array(config.dModel), injectLayers: [config.nLayers] })).rejects.toMatchObject({ code: 'layer_out_of_range' });
    expect(engine.stats).toEqual(before);
  });
});

describe('checkpoint formats and dtypes', () => {
  const tokens = [50256, 818, 262, 3726, 373, 262, 1573];

  test.each([
    ['safetensors-sharded', 'F32'],
    ['bin', 'F32'],
    ['bin-sharded', 'F32'],
    ['safetensors', 'F16'],
    ['bin', 'F16'],
    ['safetensors', 'BF16'],
  ] as const)('a %s %s checkpoint runs on the CPU and matches the reference built from its own weights', async (format, dtype) => {
    const ckpt = writeTinyGptj({ dir: path.join(tmp, `${format}-${dtype}`), format, dtype, seed: 2 });
    const config = parseGptjConfig(ckpt.config, 'config.json');
    const engine = await Engine.load({ modelDir: ckpt.dir, cacheRoot });
    try {
      // fp32 checkpoints are read in place; fp16/bf16 ones are converted to fp32 once, into the cache.
      expect(engine.info.converted).toBe(dtype !== 'F32');
      const src = await engine.sourcePass([{ tokens, position: 6 }]);
      const ref = referenceForward({ config, weights: ckpt.weights, tokens });
      expect(maxAbsDiff(src.logits, ref.logits[6])).toBeLessThan(TOL);
    } finally {
      await engine.dispose();
    }
  });

  test('built graphs are cached per checkpoint identity and rebuilt when the checkpoint changes', async () => {
    const dir = path.join(tmp, 'cache-check');
    writeTinyGptj({ dir, format: 'safetensors', seed: 3 });
    const first = await Engine.load({ modelDir: dir, cacheRoot });
    await first.dispose();
    const second = await Engine.load({ modelDir: dir, cacheRoot });
    await second.dispose();
    expect(first.info.graphsFromCache).toBe(false);
    expect(second.info.graphsFromCache).toBe(true);
    expect(second.info.cacheDir).toBe(first.info.cacheDir);

    writeTinyGptj({ dir, format: 'safetensors', seed: 3, config: { n_layer: 2 } });
    const third = await Engine.load({ modelDir: dir, cacheRoot });
    await third.dispose();
    expect(third.info.identity).not.toBe(first.info.identity);
    expect(third.info.graphsFromCache).toBe(false);
    expect(third.info.config.nLayers).toBe(2);
  });

  test.skipIf(cudaProviderInstalled())('a CUDA request on a machine without the CUDA provider fails with the install command, unless fallback is allowed', async () => {
    const dir = path.join(tmp, 'st');
    await expect(Engine.load({ modelDir: dir, cacheRoot, device: 'cuda' })).rejects.toMatchObject({
      code: 'device_unavailable',
      message: expect.stringContaining('ONNXRUNTIME_NODE_INSTALL=cuda12'),
    });
    const engine = await Engine.load({ modelDir: dir, cacheRoot, device: 'cuda', allowCpuFallback: true });
    expect(engine.info.device).toBe('cpu');
    expect(engine.info.fallbackReason).toMatch(/CUDA/);
    await engine.dispose();
  });

  test.runIf(cudaProviderInstalled())('a CUDA request on a machine with the CUDA provider runs in fp16 on CUDA, or says why its session cannot start', async () => {
    const dir = path.join(tmp, 'st');
    const { probeDevice } = await import('../src-main/engine/ort-session.ts');
    const probe = await probeDevice('cuda');
    if (probe.ok) {
      const engine = await Engine.load({ modelDir: dir, cacheRoot, device: 'cuda' });
      expect(engine.info).toMatchObject({ device: 'cuda', computeDtype: 'float16', fallbackReason: undefined });
      await engine.dispose();
    } else {
      // Installed but not loadable (no GPU, or CUDA/cuDNN libraries missing): the reason comes with the install hint.
      await expect(Engine.load({ modelDir: dir, cacheRoot, device: 'cuda' })).rejects.toMatchObject({
        code: 'device_unavailable',
        message: expect.stringMatching(/CUDA session could not start[\s\S]*ONNXRUNTIME_NODE_INSTALL=cuda12/),
      });
      const engine = await Engine.load({ modelDir: dir, cacheRoot, device: 'cuda', allowCpuFallback: true });
      expect(engine.info).toMatchObject({ device: 'cpu', fallbackReason: expect.stringMatching(/CUDA/) });
      await engine.dispose();
    }
  });

  test.each([
    ['F32', 'float16', true],
    ['BF16', 'float16', true],
    ['BF16', 'float32', true],
    ['F16', 'float16', false],
  ] as const)('an %s checkpoint computed in %s is converted by onnxruntime exactly (or read in place) and matches the reference', async (dtype, compute, converted) => {
    const ckpt = writeTinyGptj({ dir: path.join(tmp, `convert-${dtype}-${compute}`), format: 'safetensors', dtype, seed: 6 });
    const config = parseGptjConfig(ckpt.config, 'config.json');
    const engine = await Engine.load({ modelDir: ckpt.dir, cacheRoot, dtype: compute });
    try {
      expect(engine.info).toMatchObject({ converted, computeDtype: compute });
      if (converted) {
        // Every converted value is the checkpoint's value rounded once to the compute type (fp16: ties to even).
        const { openCheckpoint } = await import('../src-main/engine/checkpoint.ts');
        const { planWeights } = await import('../src-main/engine/weight-plan.ts');
        const plan = await planWeights(openCheckpoint(ckpt.dir), compute, engine.info.cacheDir);
        for (const name of ['transformer.wte.weight', 'transformer.h.1.mlp.fc_in.weight', 'lm_head.bias']) {
          const got = readTensorAsFloat64(plan.place(name).ref);
          const want = ckpt.weights.get(name)!;
          const round = compute === 'float16' ? (x: number) => decodeHalf(encodeHalf(x)) : (x: number) => x;
          expect(got.every((g, i) => g === round(want[i]))).toBe(true);
        }
      }
      const src = await engine.sourcePass([{ tokens, position: 6 }]);
      const ref = referenceForward({ config, weights: ckpt.weights, tokens });
      expect(maxAbsDiff(src.logits, ref.logits[6])).toBeLessThan(compute === 'float16' ? FP16_TOL : TOL);
    } finally {
      await engine.dispose();
    }
  });
});

describe('fp16 compute (the CUDA build) on the CPU, against the float64 reference', () => {
  let engine: Engine;
  let config: GptjConfig;
  let weights: ReadonlyMap<string, Float64Array>;
  const tokens = [50256, 464, 3797, 3332, 319, 262, 2603, 13, 198, 40, 588];

  beforeAll(async () => {
    const ckpt = writeTinyGptj({ dir: path.join(tmp, 'fp16-engine'), format: 'safetensors', dtype: 'F16', seed: 4 });
    config = parseGptjConfig(ckpt.config, 'config.json');
    weights = ckpt.weights;
    engine = await Engine.load({ modelDir: ckpt.dir, cacheRoot, dtype: 'float16' });
  });
  afterAll(async () => engine?.dispose());

  test('the full graph: resid_post of every layer and the logits, with fp32 at the boundary', async () => {
    expect(engine.info).toMatchObject({ computeDtype: 'float16', converted: false });
    const ref = referenceForward({ config, weights, tokens });
    const p = tokens.length - 1;
    const src = await engine.sourcePass([{ tokens, position: p }]);
    expect(src.resid).toBeInstanceOf(Float32Array);
    for (let l = 0; l < config.nLayers; l++) expect(relDiff(residRow(src, l, 0, config.dModel), ref.residPost[l][p])).toBeLessThan(FP16_REL);
    expect(maxAbsDiff(src.logits, ref.logits[p])).toBeLessThan(FP16_TOL);
  });

  test('the step graph: patched runs at every layer, with a prefix', async () => {
    const target = [50256, 9246, 4613, 3797, 198, 30];
    const vector = referenceForward({ config, weights, tokens }).residPost[1][6];
    const prefix = await engine.prefix(target);
    const layers = [-1, 0, 1, config.nLayers - 1];
    const vectors = new Float32Array(layers.length * config.dModel);
    layers.forEach((_, i) => vectors.set(vector, i * config.dModel));
    const finals = await engine.patched({ prefix, vectors, injectLayers: layers });
    layers.forEach((layer, row) => {
      const patched = referenceForward({ config, weights, tokens: target, patch: { layer, position: target.length - 1, vector } });
      const want = patched.residPost[config.nLayers - 1][target.length - 1];
      expect(relDiff(finals.subarray(row * config.dModel, (row + 1) * config.dModel), want)).toBeLessThan(FP16_REL);
    });
  });

  test('the unembed graph: top-k and the reference log-probability', async () => {
    // The residual whose top-1 is clearest of its runner-up, so fp16 cannot swap them; lower ranks may be near-ties.
    const candidates = referenceForward({ config, weights, tokens }).residPost.flat().map((h) => {
      const want = logSoftmax(referenceLogitLens(config, weights, h));
      const order = Array.from(want.keys()).sort((a, b) => want[b] - want[a]);
      return { h, want, order, gap: want[order[0]] - want[order[1]] };
    });
    const { h, want, order, gap } = candidates.reduce((a, b) => (b.gap > a.gap ? b : a));
    expect(gap).toBeGreaterThan(10 * FP16_TOL);
    const out = await engine.unembed({ resid: Float32Array.from(h), referenceIds: [order[7]], k: 5 });
    expect(out.topkIds[0]).toBe(order[0]);
    expect(maxAbsDiff(out.topkLogprobs, Array.from(out.topkIds, (i) => want[i]))).toBeLessThan(FP16_TOL);
    expect(Math.abs(out.referenceLogprob[0] - want[order[7]])).toBeLessThan(FP16_TOL);
    // The entropy is computed from fp32 logits (the graph's boundary), so fp16 errors reach it only through them.
    expect(Math.abs(out.measures.entropy[0] - -want.reduce((s, v) => s + Math.exp(v) * v, 0))).toBeLessThan(FP16_TOL);
  });

  test('fp16 graphs stay finite and within fp16 tolerance of the reference when q·k is beyond the fp16 range', async () => {
    const dir = path.join(tmp, 'fp16-large-qk');
    const ckpt = writeTinyGptj({ dir, format: 'safetensors', dtype: 'F16', seed: 5 });
    const weights = scaleQueryKey(ckpt.weights, config, QK_GAIN);
    writeSafetensors(path.join(dir, 'model.safetensors'), f16Tensors(weights, config));
    const ref = referenceForward({ config, weights, tokens });
    // So the test means something: an fp16 score MatMul, as the graphs once had, holds inf here (their logits came out NaN).
    expect(maxQueryKeyDot(config, weights, ref)).toBeGreaterThan(65504);

    const large = await Engine.load({ modelDir: dir, cacheRoot, dtype: 'float16' });
    try {
      const p = tokens.length - 1;
      const src = await large.sourcePass([{ tokens, position: p }]);
      expect(src.logits.every(Number.isFinite)).toBe(true);
      expect(maxAbsDiff(src.logits, ref.logits[p])).toBeLessThan(FP16_TOL);
      // The step graph's prefix attention: the last token's own embedding, injected at -1, through every block.
      const final = await large.patched({ prefix: await large.prefix(tokens), vectors: Float32Array.from(ref.embeddings[p]), injectLayers: [-1] });
      expect(final.every(Number.isFinite)).toBe(true);
      expect(relDiff(final, ref.residPost[config.nLayers - 1][p])).toBeLessThan(FP16_REL);
    } finally {
      await large.dispose();
    }
  });
});

describe('non-finite numbers', () => {
  test('a NaN in the source pass is a coded error naming the example and the first non-finite layer, never a token', async () => {
    const dir = path.join(tmp, 'nan-source');
    const ckpt = writeTinyGptj({ dir, format: 'safetensors', seed: 7 });
    const config = parseGptjConfig(ckpt.config, 'config.json');
    const weights = new Map(ckpt.weights);
    const bias = Float64Array.from(weights.get('transformer.h.1.mlp.fc_out.bias')!);
    bias[3] = NaN;
    weights.set('transformer.h.1.mlp.fc_out.bias', bias);
    writeSafetensors(path.join(dir, 'model.safetensors'), f32Tensors(weights, config));
    const engine = await Engine.load({ modelDir: dir, cacheRoot });
    try {
      await expect(engine.sourcePass([{ tokens: [50256, 464, 3797], position: 2 }])).rejects.toMatchObject({
        code: 'numerics_nonfinite',
        message: expect.stringMatching(/items\[0\].*not finite.*blocks\.1\.hook_resid_post/),
      });
    } finally {
      await engine.dispose();
    }
  });
});

function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  return maxAbsDiff(a, b) / scale;
}

/** fp16 has 11 significant bits; a few layers of rounding stay within these (absolute on logits, relative on residuals). */
const FP16_TOL = 0.05;
const FP16_REL = 0.01;

/** q_proj and k_proj are scaled by this, so q·k by its square. A power of two stays exact in fp16; 64 left this seed just under 65504. */
const QK_GAIN = 128;

function scaleQueryKey(weights: ReadonlyMap<string, Float64Array>, config: GptjConfig, gain: number): Map<string, Float64Array> {
  const scaled = new Map(weights);
  for (let l = 0; l < config.nLayers; l++) {
    const { qProj, kProj } = blockWeightNames(l);
    for (const name of [qProj, kProj]) scaled.set(name, weights.get(name)!.map((x) => x * gain));
  }
  return scaled;
}

function f32Tensors(weights: ReadonlyMap<string, Float64Array>, config: GptjConfig): RawTensor[] {
  return [...expectedWeightShapes(config)].map(([name, shape]) => ({ name, dtype: 'F32', shape, bytes: new Uint8Array(Float32Array.from(weights.get(name)!).buffer) }));
}

function f16Tensors(weights: ReadonlyMap<string, Float64Array>, config: GptjConfig): RawTensor[] {
  return [...expectedWeightShapes(config)].map(([name, shape]) => ({
    name,
    dtype: 'F16',
    shape,
    bytes: new Uint8Array(Uint16Array.from(weights.get(name)!, encodeHalf).buffer),
  }));
}

/** The largest |q·k| (rotary applied, before the 1/√dh scale) over every block, head and causal pair of a reference forward. */
function maxQueryKeyDot(config: GptjConfig, weights: ReadonlyMap<string, Float64Array>, ref: ReferenceResult): number {
  const { dModel, nHeads, dHead, rotaryDim } = config;
  const matVec = (w: Float64Array, x: Float64Array) => Float64Array.from({ length: dModel }, (_, o) => x.reduce((s, xi, i) => s + w[o * dModel + i] * xi, 0));
  let max = 0;
  for (let l = 0; l < config.nLayers; l++) {
    const n = blockWeightNames(l);
    const residPre = l === 0 ? ref.embeddings : ref.residPost[l - 1];
    const x = residPre.map((h) => layerNorm(h, weights.get(n.ln1Weight)!, weights.get(n.ln1Bias)!, config.layerNormEps));
    const heads = (w: string, p: number) => {
      const y = matVec(weights.get(w)!, x[p]);
      return Array.from({ length: nHeads }, (_, h) => applyRotary(y.subarray(h * dHead, (h + 1) * dHead), p, rotaryDim));
    };
    const q = x.map((_, p) => heads(n.qProj, p)); // [T][H] -> dh
    const k = x.map((_, p) => heads(n.kProj, p)); // [T][H] -> dh
    for (let p = 0; p < x.length; p++) {
      for (let s = 0; s <= p; s++) {
        for (let h = 0; h < nHeads; h++) max = Math.max(max, Math.abs(q[p][h].reduce((acc, qi, d) => acc + qi * k[s][h][d], 0)));
      }
    }
  }
  return max;
}
