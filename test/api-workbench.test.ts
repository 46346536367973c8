import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SweepRequest } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { tInterval } from '../src-main/sweep/intervals.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-workbench-'));
const modelA = path.join(tmp, 'model-a');
const modelB = path.join(tmp, 'model-b');
const data = path.join(tmp, 'data.jsonl');

describe("the researcher's workbench requests (real engine, real SQLite file)", () => {
  let lab: Lab;
  let a: string;
  let b: string;
  let small: string;

  const sweep = async (request: Partial<SweepRequest>) => {
    const { runId } = await lab.call('sweep.start', {
      files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, k: 3, ...request,
    });
    await lab.settled(runId);
    return runId;
  };

  beforeAll(async () => {
    // Two models with the same tokenizer: the same slice gives the same examples, different numbers.
    writeTinyGptj({ dir: modelA, format: 'safetensors', seed: 11 });
    writeTinyGptj({ dir: modelB, format: 'safetensors', seed: 12 });
    fs.writeFileSync(data, Array.from({ length: 9 }, (_, i) => JSON.stringify({ text: `Line ${i} tells of the ${['sea', 'sky', 'hill'][i % 3]} and more.` })).join('\n'));
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    await lab.call('model.load', { dir: modelA });
    a = await sweep({ name: 'A' });
    small = await sweep({ name: 'A, first 4', overrides: { limit: 4 }, techniques: [{ id: 'logitscope' }] });
    await lab.call('model.load', { dir: modelB });
    b = await sweep({ name: 'B' });
  }, 120_000);
  afterAll(async () => lab?.close());

  test('the difference of two runs is the mean of per-example differences, with a paired t interval', async () => {
    const diff = await lab.call('runs.diff', { a, b });
    expect(diff.sharedExamples).toBe(9);
    expect(diff.rows).toHaveLength(2 * 3);
    // Recomputed here from the inspector's cells, one example at a time.
    const cells = async (runId: string) => Promise.all(Array.from({ length: 9 }, (_, ordinal) => lab.call('runs.example', { runId, ordinal })));
    const [ea, eb] = [await cells(a), await cells(b)];
    for (const row of diff.rows) {
      const pairs = ea.map((x, i) => [x, eb[i]].map((e) => e.cells.find((c) => c.technique === row.technique && c.layer === row.layer)!));
      const d = pairs.map(([x, y]) => Number(y.correct) - Number(x.correct));
      const s = pairs.map(([x, y]) => y.surprisal - x.surprisal);
      const sum = (v: number[]) => v.reduce((t, x) => t + x, 0);
      const expected = (v: number[]) => tInterval(sum(v), sum(v.map((x) => x * x)), v.length);
      expect(row.n).toBe(9);
      expect(row.precision.mean).toBeCloseTo(expected(d).mean, 12);
      expect(row.surprisal.mean).toBeCloseTo(expected(s).mean, 5);
      expect(row.surprisal.low).toBeCloseTo(expected(s).low!, 5);
      expect(row.surprisal.high).toBeCloseTo(expected(s).high!, 5);
    }
    expect(diff.rows.some((r) => r.surprisal.mean !== 0)).toBe(true);
  });

  test('only examples and techniques both runs have are paired, and a run against itself differs by zero', async () => {
    const part = await lab.call('runs.diff', { a, b: small });
    expect(part.sharedExamples).toBe(4);
    expect(part.rows.map((r) => `${r.technique}@${r.layer}:${r.n}`)).toEqual(['logitscope@0:4', 'logitscope@1:4', 'logitscope@2:4']);
    expect(part.rows.every((r) => r.surprisal.mean === 0 && r.precision.mean === 0)).toBe(true);
    expect(part.method).toMatch(/paired Student t/);
  });

  test('a run can be renamed and given notes and tags, which persist and can be cleared', async () => {
    const edited = await lab.call('runs.update', { runId: a, name: '  baseline <b>A</b> ', notes: 'fp32 reference\nsecond line', tags: ['baseline', 'fp32', 'baseline'] });
    expect(edited).toMatchObject({ id: a, name: 'baseline <b>A</b>', notes: 'fp32 reference\nsecond line', tags: ['baseline', 'fp32'] });
    const listed = (await lab.call('runs.list', {})).find((r) => r.id === a)!;
    expect(listed).toMatchObject({ name: 'baseline <b>A</b>', tags: ['baseline', 'fp32'] });
    expect((await lab.call('runs.get', { runId: a })).notes).toBe('fp32 reference\nsecond line');
    // Fields left out stay; null (or an empty name) clears.
    expect(await lab.call('runs.update', { runId: a, tags: [] })).toMatchObject({ name: 'baseline <b>A</b>', notes: 'fp32 reference\nsecond line', tags: [] });
    expect(await lab.call('runs.update', { runId: a, name: '', notes: null })).toMatchObject({ name: null, notes: null });
    expect(await lab.dispatch('runs.update', { runId: 'nope-nope' })).toMatchObject({ ok: false, error: { code: 'run_not_found' } });
  });
});
