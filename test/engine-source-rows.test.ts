import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseGptjConfig, type GptjConfig } from '../src-main/engine/config.ts';
import { Engine, residRow } from '../src-main/engine/engine.ts';
import { planSourceRows } from '../src-main/engine/source-rows.ts';
import type { BatchRequest, SourceItem } from '../src-main/engine/worker-protocol.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { referenceForward } from './reference/gptj-f64.ts';

const prompt = [50256, 464, 3797, 3332, 319, 262, 2603, 13, 198, 40, 588];
const other = [50256, 9246, 4613, 3797, 198];

describe('planning the rows of a source pass', () => {
  test('every position of one prompt, and the prompt cut at each position, is one row', () => {
    const all = prompt.map((_, p) => ({ tokens: prompt, position: p }));
    const cut = prompt.map((_, p) => ({ tokens: prompt.slice(0, p + 1), position: p }));
    for (const items of [all, cut]) {
      const plan = planSourceRows(items);
      expect(plan.rows).toEqual([prompt]);
      expect(plan.rowOf).toEqual(items.map(() => 0));
    }
  });

  test('prompts that differ before an item’s position get rows of their own, and each item’s row starts with its tokens', () => {
    const items: SourceItem[] = [
      { tokens: other, position: 1 },
      { tokens: prompt, position: 3 },
      { tokens: prompt, position: 9 },
      { tokens: [...prompt.slice(0, 4), 77, 78], position: 5 }, // shares 4 tokens with prompt, then differs
      { tokens: [...prompt.slice(0, 4), 77, 78], position: 3 }, // only the shared part: any of the two rows serves it
      { tokens: other, position: 4 },
    ];
    const plan = planSourceRows(items);
    expect(plan.rows.length).toBe(3);
    items.forEach((it, i) => {
      const row = plan.rows[plan.rowOf[i]];
      expect(row.slice(0, it.position + 1)).toEqual(it.tokens.slice(0, it.position + 1));
    });
    // No row is the beginning of another: none is run for nothing.
    for (const a of plan.rows) for (const b of plan.rows) if (a !== b) expect(b.slice(0, a.length)).not.toEqual(a);
  });
});

describe('a source pass over several positions of the same prompts', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-source-rows-'));
  let engine: Engine;
  let config: GptjConfig;
  let weights: ReadonlyMap<string, Float64Array>;

  beforeAll(async () => {
    const ckpt = writeTinyGptj({ dir: path.join(tmp, 'model'), format: 'safetensors', seed: 4 });
    config = parseGptjConfig(ckpt.config, 'config.json');
    weights = ckpt.weights;
    engine = await Engine.load({ modelDir: ckpt.dir, cacheRoot: path.join(tmp, 'cache') });
  });
  afterAll(async () => {
    await engine?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const items: SourceItem[] = [
    ...prompt.map((_, p) => ({ tokens: prompt, position: p })),
    { tokens: other, position: 2 },
    { tokens: other.slice(0, 4), position: 3 },
  ];

  test('runs each distinct prompt once and gives every item the numbers of the item run alone, and of the float64 reference', async () => {
    const before = { ...engine.stats, prompts: engine.sourcePrompts };
    const together = await engine.sourcePass(items);
    expect(engine.stats.sourceRuns - before.sourceRuns).toBe(1);
    expect(engine.stats.sourceRows - before.sourceRows).toBe(items.length);
    expect(engine.sourcePrompts - before.prompts).toBe(2);

    const refs = new Map([prompt, other].map((t) => [t.join(), referenceForward({ config, weights, tokens: t })]));
    let worstAlone = 0;
    let worstRef = 0;
    for (const [b, it] of items.entries()) {
      const alone = await engine.sourcePass([{ tokens: it.tokens.slice(0, it.position + 1), position: it.position }]);
      const ref = refs.get((it.tokens === prompt ? prompt : other).join())!;
      for (let l = -1; l < config.nLayers; l++) {
        const got = residRow(together, l, b, config.dModel);
        const want = l < 0 ? ref.embeddings[it.position] : ref.residPost[l][it.position];
        worstAlone = Math.max(worstAlone, maxAbsDiff(got, residRow(alone, l, 0, config.dModel)));
        worstRef = Math.max(worstRef, maxAbsDiff(got, want));
      }
      expect(maxAbsDiff(together.logits.subarray(b * config.dVocab, (b + 1) * config.dVocab), alone.logits)).toBeLessThan(1e-5);
    }
    // Same kernels on the same tokens; only the batch's shape differs, which moves float32 sums by a few ulps.
    expect(worstAlone).toBeLessThan(1e-5);
    expect(worstRef).toBeLessThan(1e-4);
  });

  test('a whole batch (logit lens and a patchscope) stores the same numbers as one batch per item', async () => {
    const layers = Array.from({ length: config.nLayers + 1 }, (_, i) => i - 1);
    const request = (its: SourceItem[]): BatchRequest => ({
      items: its,
      names: its.map((_, i) => `item ${i}`),
      k: 5,
      maxUnembedRows: 64,
      techniques: [
        { id: 'logit_lens', prefixTokens: null, example: its.flatMap((_, b) => layers.map(() => b)), sourceLayer: its.flatMap(() => layers), injectLayer: [] },
        { id: 'logitscope', prefixTokens: [50256, 30], example: its.flatMap((_, b) => layers.map(() => b)), sourceLayer: its.flatMap(() => layers), injectLayer: its.flatMap(() => layers) },
      ],
    });
    const together = await engine.extractBatch(request(items));
    for (const [b, it] of items.entries()) {
      const alone = await engine.extractBatch(request([it]));
      expect(together.referenceTop1[b]).toBe(alone.referenceTop1[0]);
      for (let t = 0; t < 2; t++) {
        for (let l = 0; l < layers.length; l++) {
          const r = t * items.length * layers.length + b * layers.length + l; // row in the batch of all items
          const a = t * layers.length + l; // row in the batch of one
          expect(Array.from(together.topkIds.subarray(r * 5, r * 5 + 5))).toEqual(Array.from(alone.topkIds.subarray(a * 5, a * 5 + 5)));
          expect(maxAbsDiff(together.topkLogprobs.subarray(r * 5, r * 5 + 5), alone.topkLogprobs.subarray(a * 5, a * 5 + 5))).toBeLessThan(1e-5);
          expect(Math.abs(together.modelLogprobOfTop1[r] - alone.modelLogprobOfTop1[a])).toBeLessThan(1e-5);
        }
      }
    }
  });
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
