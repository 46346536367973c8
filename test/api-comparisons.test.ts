import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExampleView, SweepRequest } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { newcombeDifference, welchDifference } from '../src-main/sweep/significance.ts';
import { tInterval } from '../src-main/sweep/intervals.ts';
import { formatDifference } from '../src-main/cli/difference-table.ts';
import { commitsAt } from './fixtures/commits-at.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-comparisons-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const otherData = path.join(tmp, 'other.jsonl');
const N = 12;

const sum = (v: number[]) => v.reduce((t, x) => t + x, 0);
const sq = (v: number[]) => v.map((x) => x * x);
/** C(n, k) as a float, multiplied out: exact for the small n here. */
const choose = (n: number, k: number) => Array.from({ length: k }, (_, i) => (n - i) / (i + 1)).reduce((p, x) => p * x, 1);
/** McNemar's exact two-sided p, summed term by term from its definition. */
const mcnemarByHand = (b: number, c: number) => {
  const n = b + c;
  if (n === 0) return 1;
  const tail = sum(Array.from({ length: Math.min(b, c) + 1 }, (_, i) => choose(n, i) / 2 ** n));
  return Math.min(1, 2 * tail);
};

describe('comparisons, commitment layers and reference tables (real engine, real SQLite file)', () => {
  let lab: Lab;
  let run: string;
  let renamed: string;
  let elsewhere: string;
  let examples: ExampleView[];

  const sweep = async (request: Partial<SweepRequest>) => {
    const { runId } = await lab.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }], layers: null, k: 3, ...request });
    await lab.settled(runId);
    return runId;
  };

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 21 });
    const lines = (what: string) => Array.from({ length: N }, (_, i) => JSON.stringify({ text: `${what} ${i} tells of the ${['sea', 'sky', 'hill', 'road'][i % 4]} and more of it.` })).join('\n');
    fs.writeFileSync(data, lines('Line'));
    fs.writeFileSync(otherData, lines('Another verse'));
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    await lab.call('model.load', { dir: model });
    run = await sweep({ name: 'three techniques', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }, { id: 'custom', prompt: 'cat->cat; x->x; ?' }] });
    // The same custom prompt second here (so named custom_2), after a prompt run A never had.
    renamed = await sweep({ name: 'prompts swapped', techniques: [{ id: 'custom', prompt: 'dog->dog; ?' }, { id: 'custom', prompt: 'cat->cat; x->x; ?' }] });
    elsewhere = await sweep({ name: 'other slice', files: [otherData], techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }] });
    examples = await Promise.all(Array.from({ length: N }, (_, ordinal) => lab.call('runs.example', { runId: run, ordinal })));
  }, 180_000);
  afterAll(async () => lab?.close());

  test("each technique's commitment histogram counts the layers recomputed from the inspector's cells", async () => {
    const view = await lab.call('runs.commitment', { runId: run });
    expect(view.techniques.map((t) => t.technique)).toEqual(['logit_lens', 'logitscope', 'custom_1']);
    for (const t of view.techniques) {
      const expected = examples.map((e) => commitsAt(e.cells, t.technique));
      expect(t.n).toBe(N);
      expect(t.never).toBe(expected.filter((l) => l === null).length);
      expect(t.histogram).toEqual(view.layers.map((layer) => ({ layer, count: expected.filter((l) => l === layer).length })));
      const committed = expected.filter((l): l is number => l !== null).sort((x, y) => x - y);
      // All 12 commit here. n = 12: P(X ≤ 2) = 79/4096 ≤ 0.025 < P(X ≤ 3), so j = 3: the 3rd smallest to the 3rd largest.
      expect(committed).toHaveLength(12);
      expect(t.median).toEqual({ mean: (committed[5] + committed[6]) / 2, low: committed[2], high: committed[9], coverage: expect.closeTo(1 - (2 * 79) / 4096, 12) });
    }
    // The logit lens at the last layer is the model's own output, so it always commits.
    expect(view.techniques[0].never).toBe(0);
    expect(view.techniques.some((t) => new Set(examples.map((e) => commitsAt(e.cells, t.technique))).size > 1)).toBe(true);
  });

  test('the finder shows each example\'s commitment layer and filters "commits at ≥ L" by it', async () => {
    const all = await lab.call('runs.examples', { runId: run, filter: { technique: 'logitscope' }, offset: 0, limit: 100 });
    expect(all.rows.map((r) => r.commitsAt)).toEqual(all.rows.map((r) => commitsAt(examples[r.ordinal].cells, 'logitscope')));
    for (const from of [0, 1, 2]) {
      const late = await lab.call('runs.examples', { runId: run, filter: { technique: 'logitscope', minCommitment: from }, offset: 0, limit: 100 });
      const expected = examples.filter((e) => (commitsAt(e.cells, 'logitscope') ?? -Infinity) >= from).map((e) => e.ordinal);
      expect(late.total).toBe(expected.length);
      expect(late.rows.map((r) => r.ordinal)).toEqual(expected);
    }
  });

  test('within one run, technique B − A per layer is the mean of per-example differences, with a paired t interval and McNemar', async () => {
    const diff = await lab.call('runs.diffTechniques', { runId: run, a: 'logit_lens', b: 'logitscope' });
    expect(diff).toMatchObject({ test: 'within-run', techniques: { a: 'logit_lens', b: 'logitscope' }, sharedExamples: N });
    expect(diff.why).toMatch(/both techniques read every example/);
    expect(diff.method).toMatch(/McNemar/);
    const layers = [...new Set(examples[0].cells.map((c) => c.layer))];
    expect(diff.rows.map((r) => r.layer)).toEqual(layers);
    for (const row of diff.rows) {
      expect(row.technique).toBe('logitscope − logit_lens');
      const cell = (e: ExampleView, t: string) => e.cells.find((c) => c.technique === t && c.layer === row.layer)!;
      const dp = examples.map((e) => Number(cell(e, 'logitscope').correct) - Number(cell(e, 'logit_lens').correct));
      const ds = examples.map((e) => cell(e, 'logitscope').surprisal - cell(e, 'logit_lens').surprisal);
      expect(row.n).toBe(N);
      expect(row.precision.mean).toBeCloseTo(sum(dp) / N, 12);
      const t = tInterval(sum(ds), sum(sq(ds)), N);
      expect(row.surprisal.mean).toBeCloseTo(t.mean, 5);
      expect(row.surprisal.low).toBeCloseTo(t.low!, 5);
      expect(row.surprisal.high).toBeCloseTo(t.high!, 5);
      const [onlyA, onlyB] = [dp.filter((d) => d === -1).length, dp.filter((d) => d === 1).length];
      expect(row.mcnemar).toEqual({ onlyA, onlyB, pValue: expect.closeTo(mcnemarByHand(onlyA, onlyB), 12) });
    }
  });

  test("the logit-lens picture's columns say where each technique commits at that position", async () => {
    const view = await lab.call('extract', { text: 'Line 3 tells of the road and more of it.', positions: { from: 1, to: 6 }, techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, k: 3 });
    expect(view.columns).toHaveLength(6);
    for (const col of view.columns!) {
      expect(col.commitsAt).toEqual({ logit_lens: commitsAt(col.cells, 'logit_lens'), logitscope: commitsAt(col.cells, 'logitscope') });
    }
    expect(view.commitsAt).toEqual(view.columns!.at(-1)!.commitsAt);
  });

  test('the CLI says which test it used and why, and McNemar per layer', async () => {
    const within = formatDifference(await lab.call('runs.diffTechniques', { runId: run, a: 'logit_lens', b: 'logitscope' })).split('\n');
    expect(within[0]).toBe(`logitscope − logit_lens within run ${run.slice(0, 8)}, paired over its ${N} examples`);
    expect(within[1]).toMatch(/^test: within-run, because both techniques read every example/);
    expect(within.filter((l) => /^logitscope − logit_lens +\d+ +n=12 .* McNemar \d+ vs \d+ discordant, p=\d\.\d{3}/.test(l))).toHaveLength(3);
    const unpaired = formatDifference(await lab.call('runs.diff', { a: run, b: elsewhere })).split('\n');
    expect(unpaired[0]).toMatch(/^B − A UNPAIRED \(no shared example\)/);
    expect(unpaired.some((l) => /McNemar/.test(l))).toBe(false);
    expect(unpaired.filter((l) => /^logit_lens +\d+ +nA=12 nB=12 +Δ precision@1/.test(l))).toHaveLength(3);
  });

  test('a technique the run does not have is refused with its name', async () => {
    expect(await lab.dispatch('runs.diffTechniques', { runId: run, a: 'logit_lens', b: 'tuned_lens' })).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'b' } });
  });

  test('across runs, custom patchscopes pair by their prompt whatever each run named them, and different prompts do not pair', async () => {
    const diff = await lab.call('runs.diff', { a: run, b: renamed });
    expect(diff.test).toBe('paired');
    // A's custom_1 is B's custom_2 (same prompt); B's custom_1 (another prompt) pairs with nothing.
    expect(new Set(diff.rows.map((r) => r.technique))).toEqual(new Set(['custom_1']));
    expect(diff.rows.every((r) => r.n === N && r.surprisal.mean === 0 && r.mcnemar?.onlyA === 0 && r.mcnemar.onlyB === 0 && r.mcnemar.pValue === 1)).toBe(true);
    expect(diff.why).toMatch(/pair by what they compute/);
  });

  test('runs with no shared example get an unpaired difference (Newcombe for precision, Welch for surprisal), labelled so', async () => {
    const diff = await lab.call('runs.diff', { a: run, b: elsewhere });
    expect(diff).toMatchObject({ test: 'unpaired', sharedExamples: 0, largest: [] });
    expect(diff.why).toMatch(/share no example/);
    expect(diff.method).toMatch(/Newcombe.*Welch/);
    const other = await Promise.all(Array.from({ length: N }, (_, ordinal) => lab.call('runs.example', { runId: elsewhere, ordinal })));
    expect(diff.rows.map((r) => r.technique)).toEqual([...Array(diff.rows.length / 2).fill('logit_lens'), ...Array(diff.rows.length / 2).fill('logitscope')]);
    for (const row of diff.rows) {
      const cells = (es: ExampleView[]) => es.map((e) => e.cells.find((c) => c.technique === row.technique && c.layer === row.layer)!);
      const [ca, cb] = [cells(examples), cells(other)];
      expect(row).toMatchObject({ nA: N, nB: N, n: 2 * N });
      expect(row.mcnemar).toBeUndefined();
      const right = (cs: typeof ca) => ({ successes: cs.filter((c) => c.correct).length, n: cs.length });
      const p = newcombeDifference(right(ca), right(cb));
      expect([row.precision.mean, row.precision.low, row.precision.high]).toEqual([p.mean, p.low!, p.high!].map((x) => expect.closeTo(x, 12)));
      const sums = (cs: typeof ca) => ({ sum: sum(cs.map((c) => c.surprisal)), sumSq: sum(sq(cs.map((c) => c.surprisal))), n: cs.length });
      const w = welchDifference(sums(ca), sums(cb));
      expect(row.surprisal.mean).toBeCloseTo(w.mean, 5);
      expect(row.surprisal.low).toBeCloseTo(w.low!, 4);
      expect(row.surprisal.high).toBeCloseTo(w.high!, 4);
    }
  });

  test('the seed table is offered as a built-in reference, and a picked CSV is read by the same parser', async () => {
    const list = await lab.call('references.list', {});
    expect(list).toContainEqual(expect.objectContaining({ name: 'seed-gptj-per-layer.json', model: 'EleutherAI/gpt-j-6b' }));
    const seed = await lab.call('references.get', { name: 'seed-gptj-per-layer.json' });
    expect(seed.source).toMatch(/seed project/);
    expect(seed.rows).toContainEqual({ technique: 'logit_lens', layer: 0, metric: 'precision_at_1', value: 0.033, n: 698 });
    expect(await lab.dispatch('references.get', { name: '../PROTOCOL.md' })).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'name' } });
    const picked = await lab.call('references.parse', { name: 'my lab.csv', text: 'layer,technique,metric,value\n0,logit_lens,surprisal,4.5\n1,logit_lens,surprisal,3.25\n' });
    expect(picked).toEqual({ name: 'my lab.csv', source: 'my lab', rows: [{ technique: 'logit_lens', layer: 0, metric: 'surprisal', value: 4.5 }, { technique: 'logit_lens', layer: 1, metric: 'surprisal', value: 3.25 }] });
    const bad = await lab.dispatch('references.parse', { name: 'bad.csv', text: 'layer,technique,metric,value\nx,logit_lens,loss,1\n' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'reference_parse', issues: [{ path: 'line 2.layer' }, { path: 'line 2.metric' }] } });
  });
});
