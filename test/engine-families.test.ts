/**
 * Every family the engine reads (Llama, Mistral, Qwen2, Gemma 2, GPT-NeoX, GPT-2), on tiny
 * Hugging Face checkpoints, against the independent float64 reference: each layer's residual, the
 * logit lens, and a patched step through the prefix key/value cache. The engine's worker is driven
 * directly: this is about the graphs, and the tokenizers of some families are another branch's work.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ComputeType } from '../src-main/engine/graph/layers.ts';
import type { WorkerClient } from '../src-main/engine/worker-client.ts';
import { loadWorker, logSoftmax, maxAbsDiff, relDiff } from './fixtures/family-engine.ts';
import { FAMILIES, type Family, writeTinyFamily, type TinyFamily } from './fixtures/hf-families.ts';
import { referenceForward, referenceHead, referenceLogitLens } from './reference/families-f64.ts';

const TOL = 1e-4;
/**
 * As the GPT-J fp16 tests (engine-numerics.test.ts): 1% relative on residuals. Log-probabilities
 * are held to the same 1% of the row's scale (its largest |log p| or |logit|), not GPT-J's absolute
 * 0.05: a tied head scores a token's own embedding row at |logit| 30 and more in these fixtures,
 * where fp16 rounds in steps of 0.03.
 */
const FP16_REL = 0.01;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-families-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A source prompt and a target prompt longer than the sliding windows (4) of the Mistral and Gemma 2 fixtures. */
const SOURCE = [1, 17, 42, 8, 25, 11, 30, 3, 60, 7, 19, 44];
const TARGET = [1, 9, 46, 37, 19, 30, 12, 14, 5];

/** The biggest deviations seen per family; LOGITSCOPE_PRINT_NUMERICS=1 prints them at the end, for the record. */
const measured: Record<string, Record<string, number>> = {};
const note = (key: string, what: string, v: number) => {
  measured[key] ??= {};
  measured[key][what] = Math.max(measured[key][what] ?? 0, v);
};
afterAll(() => {
  if (process.env.LOGITSCOPE_PRINT_NUMERICS) console.log(JSON.stringify(measured, null, 1));
});

/**
 * What the numerics tests compare, for one checkpoint and compute type: every layer's residual at
 * three positions, the logit lens of every layer's residual (full log-softmax), and the patchscope
 * step for injection before the first block, after block 0 and after the last.
 */
function numericsSuite(o: { family: Family; dtype: ComputeType; checkpoint: () => TinyFamily }) {
  const fp16 = o.dtype === 'float16';
  let key = `${o.family} ${o.dtype}`;
  let ckpt: TinyFamily;
  let worker: WorkerClient;
  let nLayers: number;
  let dModel: number;

  beforeAll(async () => {
    ckpt = o.checkpoint();
    key = `${o.family} ${o.dtype} on ${String(ckpt.config.torch_dtype)}`;
    const loaded = await loadWorker({ dir: ckpt.dir, dtype: o.dtype, cacheRoot: path.join(tmp, 'cache') });
    worker = loaded.worker;
    ({ nLayers, dModel } = loaded.info.config);
  }, 120_000);
  afterAll(async () => worker?.terminate());

  const ref = (tokens: number[], patch?: { layer: number; position: number; vector: Float64Array }) =>
    referenceForward({ family: o.family, config: ckpt.config, weights: ckpt.tensors, tokens, patch });
  const lens = (h: Float64Array) => referenceLogitLens(o.family, ckpt.config, ckpt.tensors, h);
  const head = (h: Float64Array) => referenceHead(o.family, ckpt.config, ckpt.tensors, h);

  test(`${key}: hook_embed and every resid_post match the float64 reference`, async () => {
    const want = ref(SOURCE);
    const positions = [0, 5, SOURCE.length - 1];
    const out = await worker.call('source', { items: positions.map((position) => ({ tokens: SOURCE, position })), names: positions.map(String) });
    positions.forEach((p, b) => {
      for (let l = -1; l < nLayers; l++) {
        const start = ((l + 1) * positions.length + b) * dModel;
        const got = out.resid.subarray(start, start + dModel);
        const expected = l < 0 ? want.embeddings[p] : want.residPost[l][p];
        const d = fp16 ? relDiff(got, expected) : maxAbsDiff(got, expected);
        note(key, fp16 ? 'resid (relative)' : 'resid', d);
        expect(d, `layer ${l}, position ${p}`).toBeLessThan(fp16 ? FP16_REL : TOL);
      }
    });
  });

  test(`${key}: the logit lens of every layer (the family's final norm, head and soft-cap) gives the reference log-probabilities`, async () => {
    const want = ref(SOURCE);
    const p = SOURCE.length - 1;
    const rows = [want.embeddings[p], ...want.residPost.map((r) => r[p])];
    const expected = rows.map((h) => lens(h));
    const resid = new Float32Array(rows.length * dModel);
    rows.forEach((h, i) => resid.set(h, i * dModel));
    const k = 5;
    // Each row's reference token: the reference's fourth most likely, so not the top-k's first.
    const chosen = expected.map((e) => Array.from(e.keys()).sort((a, b) => e[b] - e[a])[3]);
    const out = await worker.call('unembed', { resid, referenceIds: chosen, k, logits: true, names: rows.map(String) });
    const vocab = expected[0].length;
    expected.forEach((e, r) => {
      // fp16: relative to the largest |log p|, as for residuals. A tied head scores a token's own
      // embedding row far above the rest (|logit| near 100 in these fixtures), beyond 0.05 of fp16 rounding.
      const logprobs = logSoftmax(out.logits!.subarray(r * vocab, (r + 1) * vocab));
      const d = fp16 ? relDiff(logprobs, e) : maxAbsDiff(logprobs, e);
      note(key, fp16 ? 'logit lens logprob (relative)' : 'logit lens logprob', d);
      expect(d, `row ${r}`).toBeLessThan(fp16 ? FP16_REL : TOL);
      // The device's own top-k and chosen-token log-probability, what a sweep stores. In fp16 the
      // head's output is rounded at the scale of the row's largest |logit|, so relative to that.
      const topk = Array.from(out.topkIds.subarray(r * k, (r + 1) * k));
      const pairs = [...topk.map((id, j) => [out.topkLogprobs[r * k + j], e[id]]), [out.referenceLogprob[r], e[chosen[r]]]];
      const dk = Math.max(...pairs.map(([got, want]) => Math.abs(got - want))) / (fp16 ? Math.max(...head(rows[r]).map(Math.abs)) : 1);
      note(key, fp16 ? 'top-k and chosen logprob (relative to max |logit|)' : 'top-k and chosen logprob', dk);
      expect(dk).toBeLessThan(fp16 ? FP16_REL : TOL);
      if (!fp16) expect(topk[0]).toBe(e.indexOf(Math.max(...e)));
    });
  });

  test(`${key}: a patchscope step through the prefix cache matches the reference's patched forward`, async () => {
    const vector = ref(SOURCE).residPost[1][6];
    const position = TARGET.length - 1;
    const layers = [-1, 0, 1, nLayers - 1];
    const order = [2, 0, 3, 1]; // unsorted on purpose: the engine returns rows in the order asked
    const vectors = new Float32Array(order.length * dModel);
    order.forEach((_, row) => vectors.set(vector, row * dModel));
    await worker.call('prefix', { tokens: TARGET });
    const { final } = await worker.call('patched', { prefixTokens: TARGET, vectors, injectLayers: order.map((i) => layers[i]) });
    for (const [row, i] of order.entries()) {
      const patched = ref(TARGET, { layer: layers[i], position, vector });
      // The naive patched run (the whole target prompt through the full body) agrees as well.
      const naive = await worker.call('naive', { targetTokens: TARGET, layer: layers[i], vector: Float32Array.from(vector) });
      const dn = fp16 ? relDiff(naive.final, patched.residPost[nLayers - 1][position]) : maxAbsDiff(naive.final, patched.residPost[nLayers - 1][position]);
      note(key, fp16 ? 'naive patched resid (relative)' : 'naive patched resid', dn);
      expect(dn, `naive, injected after layer ${layers[i]}`).toBeLessThan(fp16 ? FP16_REL : TOL);
      const want = patched.residPost[nLayers - 1][position];
      const got = final.subarray(row * dModel, (row + 1) * dModel);
      const d = fp16 ? relDiff(got, want) : maxAbsDiff(got, want);
      note(key, fp16 ? 'patched resid (relative)' : 'patched resid', d);
      expect(d, `injected after layer ${layers[i]}`).toBeLessThan(fp16 ? FP16_REL : TOL);
      // And its logit lens: the patched run's next-token distribution.
      const out = await worker.call('unembed', { resid: Float32Array.from(got), referenceIds: [0], k: 1, logits: true, names: ['patched'] });
      const dl = fp16 ? relDiff(logSoftmax(out.logits!), lens(want)) : maxAbsDiff(logSoftmax(out.logits!), lens(want));
      note(key, fp16 ? 'patched logprob (relative)' : 'patched logprob', dl);
      expect(dl).toBeLessThan(fp16 ? FP16_REL : TOL);
    }
  });
}

for (const family of FAMILIES) {
  describe(`${family}, fp32 compute on an F32 checkpoint`, () => {
    numericsSuite({ family, dtype: 'float32', checkpoint: () => writeTinyFamily({ dir: path.join(tmp, `${family}-f32`), family, seed: 3 }) });
  });
}

for (const family of FAMILIES) {
  describe(`${family}, fp16 compute on a BF16 checkpoint (converted on load)`, () => {
    numericsSuite({ family, dtype: 'float16', checkpoint: () => writeTinyFamily({ dir: path.join(tmp, `${family}-bf16`), family, seed: 5, dtype: 'BF16' }) });
  });
}

for (const family of FAMILIES) {
  describe(`${family}, fp16 compute on an F16 checkpoint (read in place)`, () => {
    numericsSuite({ family, dtype: 'float16', checkpoint: () => writeTinyFamily({ dir: path.join(tmp, `${family}-f16`), family, seed: 6, dtype: 'F16' }) });
  });
}

for (const family of FAMILIES) {
  describe(`${family}, fp32 compute on a BF16 checkpoint (converted on load)`, () => {
    numericsSuite({ family, dtype: 'float32', checkpoint: () => writeTinyFamily({ dir: path.join(tmp, `${family}-bf16-f32`), family, seed: 8, dtype: 'BF16' }) });
  });
}
