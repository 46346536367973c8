import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { Engine } from '../src-main/engine/engine.ts';
import type { ExampleResult } from '../src-main/protocol/results.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import type { SweepSpec } from '../src-main/protocol/spec.ts';
import { BUILT_IN_TECHNIQUES } from '../src-main/protocol/techniques.ts';
import { prepareSweep } from '../src-main/sweep/prepare.ts';
import { runSweep, type SweepCache, type SweepPlan } from '../src-main/sweep/run-sweep.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

/**
 * onnxruntime rounds an example's numbers differently with the batch it runs in (padding, the rows
 * beside it), so a resumed or repeated sweep stores an uninterrupted run's floats only if it forms
 * the same batches. These tests pin that the batches depend on the examples alone, not on time.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sweep-batches-'));

/** A results cache in memory that records the batches the sweep asks it about. */
function memoryCache(stored = new Map<number, ExampleResult>()): SweepCache & { batches: number[][]; stored: Map<number, ExampleResult> } {
  const batches: number[][] = [];
  return {
    batches,
    stored,
    lookup(ordinals) {
      batches.push(ordinals);
      return new Map(ordinals.filter((o) => stored.has(o)).map((o) => [o, stored.get(o)!]));
    },
    save(batch) {
      for (const b of batch) stored.set(b.ordinal, structuredClone(b.result));
    },
  };
}

const sorted = (batch: number[]) => [...batch].sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('a sweep forms its batches from its examples alone', () => {
  let engine: Engine;
  let plan: SweepPlan;

  beforeAll(async () => {
    const ckpt = writeTinyGptj({ dir: path.join(tmp, 'model'), format: 'safetensors', seed: 7, config: { n_layer: 2 } });
    const data = path.join(tmp, 'data.jsonl');
    // Prompts of many lengths, so that length-sorting within a window matters.
    fs.writeFileSync(data, Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `${'the cat sat on a mat and '.repeat(1 + (i * 7) % 5)}ran.` })).join('\n'));
    engine = await Engine.load({ modelDir: ckpt.dir, cacheRoot: path.join(tmp, 'cache') });
    const spec: SweepSpec = {
      modelDir: '', device: 'cpu', files: [data], protocol: resolveProtocol('logitscope', { bos: true, limit: 40, positionSeed: 3 }),
      techniques: [...BUILT_IN_TECHNIQUES], layers: null, k: 3, strategy: 'fast',
    };
    plan = (await prepareSweep(engine, spec)).plan;
    expect(plan.examples).toHaveLength(40);
  });
  afterAll(async () => engine?.dispose());
  afterEach(() => vi.restoreAllMocks());

  test('windows of 8, 16 and then 32 examples, however long each took: a loaded machine batches as an idle one', async () => {
    const idle = memoryCache();
    await runSweep(engine, plan, { cache: idle, budgetBytes: 2 ** 30 });
    // Every call of the clock reads 10 s later than the one before, as on a machine too busy to keep up.
    let now = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => (now += 10_000));
    const loaded = memoryCache();
    await runSweep(engine, plan, { cache: loaded, budgetBytes: 2 ** 30 });

    // A 1 GiB budget takes a whole window per batch.
    expect(idle.batches.map(sorted)).toEqual([range(0, 8), range(8, 24), range(24, 40)]);
    expect(loaded.batches).toEqual(idle.batches);
  });

  test('a sweep stopped after two batches and resumed under load stores the floats of an uninterrupted one, byte for byte', async () => {
    const whole = await runSweep(engine, plan, { maxBatchExamples: 4 });

    const controller = new AbortController();
    let batches = 0;
    const first = memoryCache();
    const stopped = await runSweep(engine, plan, { cache: first, maxBatchExamples: 4, signal: controller.signal, onProgress: () => ++batches === 2 && controller.abort() });
    expect(stopped.status).toBe('cancelled');
    expect(first.stored.size).toBe(8);

    // The resume runs on a loaded machine (each call of the clock 10 s on), the first run on an idle one.
    let now = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => (now += 10_000));
    const again = memoryCache(first.stored);
    const resumed = await runSweep(engine, plan, { cache: again, maxBatchExamples: 4 });
    expect(resumed.status).toBe('completed');
    expect(again.batches.slice(0, 2)).toEqual(first.batches);
    expect(resumed.results).toEqual(whole.results);
  });
});
