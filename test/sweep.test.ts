import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Engine } from '../src-main/engine/engine.ts';
import type { ExampleResult } from '../src-main/protocol/results.ts';
import { prepareSweep } from '../src-main/sweep/prepare.ts';
import { buildExamples, drawPosition } from '../src-main/data/selection.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import { runSweep, type SweepProgress } from '../src-main/sweep/run-sweep.ts';
import type { SweepSpec } from '../src-main/protocol/spec.ts';
import { BUILT_IN_TECHNIQUES, customPatchscope } from '../src-main/protocol/techniques.ts';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import { expectedWeightShapes, parseGptjConfig } from '../src-main/engine/config.ts';
import { writeSafetensors, writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sweep-'));
const WORDS = 'the of and to in is was that for on with as by at from his her it an were are which this be or had not but'.split(' ');

function writeDataset(file: string, n: number, seed: number): void {
  const next = mulberry32(seed);
  const lines = Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 3 + Math.floor(next() * 14) }, () => WORDS[Math.floor(next() * WORDS.length)]);
    return JSON.stringify({ text: `${words.join(' ')}.`, meta: { pile_set_name: i % 2 ? 'Pile-CC' : 'Wikipedia (en)' } });
  });
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

/**
 * docs/PROTOCOL.md's position rule, written again here so the expectation does not come from the
 * code under test: mulberry32's first draw u, seeded with the recorded seed mixed with the record
 * index, then ⌊u · length⌋ (uniform over [0, length − 1]).
 */
function documentedPosition(seed: number, recordIndex: number, length: number): number {
  const mixed = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(recordIndex + 1, 0xc2b2ae35);
  let t = (mixed + 0x6d2b79f5) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * length);
}

/**
 * Fast and naive runs sum in different orders, so two nearly tied tokens may swap. A row agrees
 * when the top-1 is the same and the surprisals match within 1e-4, or when the two top-1s are
 * tied within 1e-4 in the model's own distribution (then the surprisals are compared as sets).
 */
function expectSameResults(fast: (ExampleResult | undefined)[], naive: (ExampleResult | undefined)[]): void {
  expect(fast.length).toBe(naive.length);
  let swapped = 0;
  fast.forEach((f, i) => {
    const n = naive[i]!;
    expect(f!.reference_top1).toBe(n.reference_top1);
    expect(f!.layers.length).toBe(n.layers.length);
    f!.layers.forEach((a, j) => {
      const b = n.layers[j];
      expect([a.technique, a.layer]).toEqual([b.technique, b.layer]);
      expect(Math.abs(a.surprisal - b.surprisal)).toBeLessThan(1e-4);
      if (a.top1 === b.top1) {
        expect(Math.abs(a.surprisal_paper - b.surprisal_paper)).toBeLessThan(1e-4);
      } else {
        swapped++;
        expect(Math.abs(a.top_k.probs[0] - b.top_k.probs[0])).toBeLessThan(1e-4);
      }
    });
  });
  expect(swapped).toBeLessThan(3);
}

describe('sweeps on a tiny random checkpoint', () => {
  let engine: Engine;
  const data = path.join(tmp, 'data.jsonl');
  const modelDir = path.join(tmp, 'model');

  beforeAll(async () => {
    const ckpt = writeTinyGptj({ dir: modelDir, format: 'safetensors', seed: 11, config: { n_layer: 4 } });
    writeDataset(data, 40, 5);
    engine = await Engine.load({ modelDir: ckpt.dir, cacheRoot: path.join(tmp, 'cache') });
  });
  afterAll(async () => engine?.dispose());

  const spec = (over: Partial<SweepSpec> & { bos: boolean }): SweepSpec => ({
    modelDir: '',
    device: 'cpu',
    files: [data],
    protocol: resolveProtocol('logitscope', { bos: over.bos, limit: 6, positionSeed: 3 }),
    techniques: [...BUILT_IN_TECHNIQUES, customPatchscope('hello->there;?->', 0), customPatchscope('x = ?', 1, { kind: 'fixed', layer: 1 })],
    layers: null,
    k: 5,
    strategy: 'fast',
    ...over,
  });

  test.each([true, false])('the fast path equals the naive path for every technique, custom prompts and a fixed target layer (BOS %s)', async (bos) => {
    const prepared = await prepareSweep(engine, spec({ bos }));
    expect(prepared.plan.techniques.map((t) => t.id)).toEqual(['logit_lens', 'patchscope', 'logitscope', 'custom_1', 'custom_2']);
    const fast = await runSweep(engine, prepared.plan);
    const naive = await runSweep(engine, { ...prepared.plan, strategy: 'naive' });
    expect(fast.status).toBe('completed');
    expectSameResults(fast.results, naive.results);
  });

  test('at the last layer every technique gives precision@1 = 1 and the same surprisal', async () => {
    const prepared = await prepareSweep(engine, spec({ bos: true }));
    const out = await runSweep(engine, prepared.plan);
    const last = out.summary.filter((s) => s.layer === engine.config.nLayers - 1 && s.technique !== 'custom_2');
    expect(last).toHaveLength(4);
    for (const s of last) {
      expect(s.precision.mean).toBe(1);
      expect(s.surprisal.mean).toBeCloseTo(last[0].surprisal.mean, 4);
      expect(s.surprisal.mean).toBeCloseTo(s.surprisalPaper.mean, 4);
    }
  });

  test('the fast path runs each source prompt once and one patched run per technique and batch', async () => {
    const prepared = await prepareSweep(engine, spec({ bos: true }));
    const before = { ...engine.stats };
    await runSweep(engine, prepared.plan);
    const n = prepared.plan.examples.length;
    const patchTechniques = prepared.plan.techniques.length - 1;
    expect(engine.stats.sourceRows - before.sourceRows).toBe(n);
    expect(engine.stats.patchedRuns - before.patchedRuns).toBe(patchTechniques);
    expect(engine.stats.patchedRows - before.patchedRows).toBe(n * engine.config.nLayers * patchTechniques);
    expect(engine.stats.naiveRuns).toBe(before.naiveRuns);
  });

  test('one position is drawn per example from the recorded seed and shared by every technique and layer', async () => {
    const prepared = await prepareSweep(engine, spec({ bos: true }));
    for (const e of prepared.plan.examples) {
      expect(e.position).toBe(documentedPosition(3, e.recordIndex, e.tokens.length));
      expect(e.position).toBeLessThan(e.tokens.length);
      expect(e.tokens[0]).toBe(50256);
    }
    const other = await prepareSweep(engine, { ...spec({ bos: true }), protocol: resolveProtocol('logitscope', { bos: true, limit: 6, positionSeed: 4 }) });
    expect(other.plan.examples.map((e) => e.position)).not.toEqual(prepared.plan.examples.map((e) => e.position));
  });

  test('the position rule of docs/PROTOCOL.md gives the positions worked out by hand', () => {
    // (seed, record index, length) → position, computed apart from this code base (a Python rendering of the same rule).
    const worked: [number, number, number, number][] = [[3, 0, 10, 7], [3, 1, 10, 0], [3, 2, 10, 2], [3, 7, 1000, 626], [4, 0, 10, 0], [1, 123, 50, 35]];
    for (const [seed, index, length, position] of worked) {
      expect(documentedPosition(seed, index, length)).toBe(position);
      expect(drawPosition(seed, index, length), `seed ${seed}, record ${index}, length ${length}`).toBe(position);
    }
  });

  test('positions are uniform over [0, len − 1]: every position of a 10-token prompt is drawn about equally often', () => {
    const counts = new Array<number>(10).fill(0);
    for (let index = 0; index < 10_000; index++) counts[drawPosition(3, index, 10)]++;
    // χ² with 9 degrees of freedom; 27.9 is its 0.999 quantile, so a uniform draw fails 1 time in 1000 (and this one is fixed by its seed).
    const chi2 = counts.reduce((t, c) => t + (c - 1000) ** 2 / 1000, 0);
    expect(chi2).toBeLessThan(27.9);
  });

  test('progress events arrive per batch with partial means, and cancelling keeps every finished result', async () => {
    const prepared = await prepareSweep(engine, { ...spec({ bos: true }), protocol: resolveProtocol('logitscope', { bos: true, limit: 30 }) });
    const controller = new AbortController();
    const events: SweepProgress[] = [];
    const out = await runSweep(engine, prepared.plan, {
      budgetBytes: 2 ** 16, // small batches, so there is something left to cancel
      onProgress: (p) => {
        events.push(p);
        if (events.length === 2) controller.abort();
      },
      signal: controller.signal,
    });
    expect(out.status).toBe('cancelled');
    expect(events).toHaveLength(2);
    const finished = out.results.filter((r) => r !== undefined);
    expect(finished.length).toBe(events[1].examplesDone);
    expect(finished.length).toBeLessThan(prepared.plan.examples.length);
    expect(events[1].summary.find((s) => s.technique === 'logit_lens' && s.layer === 0)!.n).toBe(finished.length);
    expect(events[1].throughput).toBeGreaterThan(0);
  });

  test('the first progress comes after a small first window, whatever the memory budget allows per batch', async () => {
    const prepared = await prepareSweep(engine, { ...spec({ bos: true }), protocol: resolveProtocol('logitscope', { bos: true, limit: 40 }) });
    const done: number[] = [];
    const out = await runSweep(engine, prepared.plan, { budgetBytes: 2 ** 30, onProgress: (p) => done.push(p.examplesDone) });
    expect(out.status).toBe('completed');
    // A 1 GiB budget fits all 40 examples in one batch; the live curves still get points early.
    expect(done[0]).toBeLessThanOrEqual(8);
    expect(done.length).toBeGreaterThan(1);
    expect(done.at(-1)).toBe(40);
  });

  test('a sweep with nothing to run is refused with a clear message', async () => {
    const prepared = await prepareSweep(engine, spec({ bos: true }));
    await expect(runSweep(engine, { ...prepared.plan, techniques: [] })).rejects.toMatchObject({ code: 'argument_invalid' });
    await expect(runSweep(engine, { ...prepared.plan, layers: [] })).rejects.toMatchObject({ code: 'argument_invalid' });
    await expect(runSweep(engine, { ...prepared.plan, layers: [99] })).rejects.toMatchObject({ code: 'layer_out_of_range' });
    const strict = resolveProtocol('logitscope', { filter: { maxWords: 2 } });
    await expect(prepareSweep(engine, { ...spec({ bos: true }), protocol: strict })).rejects.toMatchObject({ code: 'slice_empty' });
    expect(() => customPatchscope('', 0)).toThrow(expect.objectContaining({ code: 'prompt_empty' }));
  });

  test('a float16 sweep on the CPU gives the float32 top-1 except near-ties, and surprisals within 0.1 nats', async () => {
    const prepared = await prepareSweep(engine, { ...spec({ bos: true }), protocol: resolveProtocol('logitscope', { bos: true, limit: 20, positionSeed: 3 }) });
    const fp32 = await runSweep(engine, prepared.plan);
    const fp16Engine = await Engine.load({ modelDir, cacheRoot: path.join(tmp, 'cache'), dtype: 'float16' });
    let fp16: Awaited<ReturnType<typeof runSweep>>;
    try {
      expect(fp16Engine.info).toMatchObject({ computeDtype: 'float16', converted: true });
      fp16 = await runSweep(fp16Engine, prepared.plan);
    } finally {
      await fp16Engine.dispose();
    }
    // A near-tie: the float32 run's top two are within this many nats, so fp16 rounding may swap them.
    const NEAR = 0.05;
    let rows = 0;
    let nearTies = 0;
    let maxDelta = 0;
    fp32.results.forEach((a, i) => {
      const b = fp16.results[i]!;
      const own = a!.layers.find((r) => r.technique === 'logit_lens' && r.layer === engine.config.nLayers - 1)!;
      if (a!.reference_top1 !== b.reference_top1) {
        nearTies++;
        expect(Math.log(own.top_k.probs[0] / own.top_k.probs[1])).toBeLessThan(NEAR);
        return; // every row's surprisal is of another token then
      }
      a!.layers.forEach((x, j) => {
        const y = b.layers[j];
        rows++;
        maxDelta = Math.max(maxDelta, Math.abs(x.surprisal - y.surprisal));
        if (x.top1 !== y.top1) {
          nearTies++;
          expect(Math.log(x.top_k.probs[0] / x.top_k.probs[1])).toBeLessThan(NEAR);
        }
      });
    });
    console.log(`fp16 vs fp32 on the CPU: ${rows} rows, ${nearTies} top-1 differences (all near-ties), max surprisal difference ${maxDelta.toFixed(4)} nats`);
    expect(rows).toBeGreaterThan(0.8 * 20 * 5 * engine.config.nLayers);
    expect(nearTies).toBeLessThan(rows / 20);
    expect(maxDelta).toBeLessThan(0.1);
  }, 60_000);

  test('a NaN that reaches only the patchscope rows is a coded error naming the technique, the layer and the example', async () => {
    const dir = path.join(tmp, 'nan-target');
    const ckpt = writeTinyGptj({ dir, format: 'safetensors', seed: 11, config: { n_layer: 4 } });
    const config = parseGptjConfig(ckpt.config, 'config.json');
    // "cat" is in the token-identity prompt's prefix and in no source text: only the patchscope's prefix keys/values are NaN.
    const cat = engine.tokenize('cat', { bos: false })[0];
    const wte = Float64Array.from(ckpt.weights.get('transformer.wte.weight')!);
    wte.fill(NaN, cat * config.dModel, (cat + 1) * config.dModel);
    const weights = new Map(ckpt.weights).set('transformer.wte.weight', wte);
    writeSafetensors(path.join(dir, 'model.safetensors'), [...expectedWeightShapes(config)].map(([name, shape]) => (
      { name, dtype: 'F32', shape, bytes: new Uint8Array(Float32Array.from(weights.get(name)!).buffer) }
    )));
    const nan = await Engine.load({ modelDir: dir, cacheRoot: path.join(tmp, 'cache') });
    try {
      const prepared = await prepareSweep(nan, spec({ bos: true }));
      await expect(runSweep(nan, prepared.plan)).rejects.toMatchObject({
        code: 'numerics_nonfinite',
        message: expect.stringMatching(/^patchscope at layer -?\d+ for example \d+ of the sweep \(record \d+, position \d+\) gives logits that are not finite/),
      });
      // Without that technique the same sweep runs.
      const out = await runSweep(nan, { ...prepared.plan, techniques: prepared.plan.techniques.filter((t) => t.id !== 'patchscope') });
      expect(out.status).toBe('completed');
    } finally {
      await nan.dispose();
    }
  });

  test('records that tokenize to nothing or exceed n_positions are skipped and counted, not fatal', () => {
    const records = ['', 'a short one', 'word '.repeat(200), 'another one'].map((text, index) => ({ text, file: 'x.jsonl', index }));
    const { examples, skipped } = buildExamples(records, {
      tokenize: (t) => engine.tokenizer.encode(t),
      bos: { id: 50256, drawn: true },
      nCtx: engine.config.nCtx,
      positionSeed: 0,
    });
    expect(skipped).toEqual({ empty: 1, tooLong: 1 });
    expect(examples.map((e) => e.recordIndex)).toEqual([1, 3]);
  });
});
