import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import { rowsFromResults } from '../src-main/store/rows.ts';
import type { NewRun } from '../src-main/store/types.ts';
import type { ExampleResult } from '../src-main/protocol/results.ts';
import type { Interval, LayerSummary } from '../src-main/protocol/spec.ts';
import { regularizedBeta, summarize, tInterval, tQuantile, tQuantile975, wilsonInterval } from '../src-main/sweep/intervals.ts';
import type { ResolvedTechnique } from '../src-main/protocol/techniques.ts';

// 95% intervals that do not mislead: Wilson for precision@1, Student t for the surprisal means,
// computed by one function whether the sums come from the live sweep or from SQL.

describe('the Wilson interval for precision@1', () => {
  it('keeps a width at p = 1 and p = 0, and matches values worked by hand', () => {
    expect(wilsonInterval(5, 5)).toEqual({ mean: 1, low: expect.closeTo(0.5655, 4), high: 1 });
    expect(wilsonInterval(1, 1)).toEqual({ mean: 1, low: expect.closeTo(0.2065, 4), high: 1 });
    expect(wilsonInterval(0, 1)).toEqual({ mean: 0, low: 0, high: expect.closeTo(0.7935, 4) });
    expect(wilsonInterval(2, 3)).toEqual({ mean: 2 / 3, low: expect.closeTo(0.2077, 4), high: expect.closeTo(0.9385, 4) });
  });

  it('stays within [0, 1] around the observed proportion for every count at small n', () => {
    for (let n = 1; n <= 30; n++) {
      for (let x = 0; x <= n; x++) {
        const { mean, low, high } = wilsonInterval(x, n);
        expect(0 <= low && low <= mean && mean <= high && high <= 1, `${x} of ${n}: [${low}, ${high}]`).toBe(true);
        expect(high - low).toBeGreaterThan(0);
      }
    }
  });

  it('approaches the normal approximation at large n', () => {
    const { low, high } = wilsonInterval(5000, 10000);
    expect(high - low).toBeCloseTo(2 * 1.959964 * Math.sqrt(0.25 / 10000), 5);
  });

  it('is refused without examples, so no NaN can reach a reply', () => {
    expect(() => wilsonInterval(0, 0)).toThrow(RangeError);
  });
});

describe("Student's t quantile", () => {
  it('matches the printed table at 0.975', () => {
    const table: [number, number][] = [[1, 12.706], [2, 4.303], [3, 3.182], [4, 2.776], [5, 2.571], [10, 2.228], [30, 2.042], [120, 1.980]];
    for (const [df, t] of table) expect(tQuantile975(df), `df ${df}`).toBeCloseTo(t, 3);
  });

  it('tends to the normal 1.960 as the degrees of freedom grow, from above', () => {
    const ts = [30, 300, 3000, 30000, 1e6].map(tQuantile975);
    ts.slice(1).forEach((t, i) => expect(t).toBeLessThan(ts[i]));
    expect(tQuantile975(1e6)).toBeCloseTo(1.959964, 5);
  });

  it('matches other tabulated levels and the closed forms of 1 and 2 degrees of freedom', () => {
    expect(tQuantile(0.995, 10)).toBeCloseTo(3.169, 3);
    expect(tQuantile(0.9, 3)).toBeCloseTo(1.638, 3);
    for (const p of [0.6, 0.9, 0.975, 0.999]) {
      expect(tQuantile(p, 1)).toBeCloseTo(Math.tan(Math.PI * (p - 0.5)), 9);
      expect(tQuantile(p, 2)).toBeCloseTo((2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 9);
    }
  });

  it('rests on an incomplete beta function that matches its closed forms', () => {
    for (const x of [0.01, 0.3, 0.77]) {
      expect(regularizedBeta(x, 1, 1)).toBeCloseTo(x, 12);
      expect(regularizedBeta(x, 3, 1)).toBeCloseTo(x ** 3, 12);
      expect(regularizedBeta(x, 1, 4)).toBeCloseTo(1 - (1 - x) ** 4, 12);
    }
    expect(regularizedBeta(0.5, 7.5, 7.5)).toBeCloseTo(0.5, 12);
  });
});

describe('the t interval for surprisal means', () => {
  it('of one value is unbounded (null bounds), not zero width', () => {
    expect(tInterval(2.5, 6.25, 1)).toEqual({ mean: 2.5, low: null, high: null });
  });

  it('of two values uses t with one degree of freedom', () => {
    // Values 1 and 3: mean 2, sd √2, half-width t(0.975, 1)·√2/√2 = tan(0.475π).
    const half = Math.tan(0.475 * Math.PI);
    const { mean, low, high } = tInterval(4, 10, 2);
    expect(mean).toBe(2);
    expect(low).toBeCloseTo(2 - half, 9);
    expect(high).toBeCloseTo(2 + half, 9);
  });
});

describe('summaries from SQL and from the sweep', () => {
  const LENS: ResolvedTechnique = { id: 'logit_lens', kind: 'logit_lens' };
  const SCOPE: ResolvedTechnique = { id: 'logitscope', kind: 'patchscope', prompt: '?', promptTokens: [50256, 30], targetLayer: { kind: 'same' } };
  const RUN: NewRun = {
    model: { key: 'ckpt:float32:cpu', path: '/m', info: {} },
    files: ['/d.jsonl'],
    protocol: { preset: 'logitscope', poolStart: 0, poolEnd: 100, filter: {}, shuffleSeed: null, evalStart: 0, evalEnd: null, bos: true, positionSeed: 1 },
    techniques: [LENS, SCOPE], layers: [0, 1, 2], k: 1, strategy: 'fast', codeVersion: 'test',
  };

  /** n examples with random surprisals; layer 2 of the lens is always right, layer 0 never. */
  function results(n: number, seed: number): ExampleResult[] {
    const rand = mulberry32(seed);
    return Array.from({ length: n }, (_, i) => ({
      tokens: [50256, i, i + 1], position: 1, reference_top1: 7,
      layers: RUN.techniques.flatMap((t) =>
        RUN.layers.map((layer) => {
          const top1 = t.id === 'logit_lens' && layer === 2 ? 7 : t.id === 'logit_lens' && layer === 0 ? 8 : rand() < 0.5 ? 7 : 9;
          return { layer, technique: t.id, top1, surprisal: 10 * rand(), surprisal_paper: rand() ** 2, top_k: { ids: [top1], probs: [0.5] }, kl: null, rank: null, entropy: null };
        }),
      ),
    }));
  }

  function stored(exs: ExampleResult[], saved = exs.length): { store: ResultStore; id: string; reopen: () => ResultStore } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'intervals-'));
    const file = path.join(dir, 'results.sqlite');
    const opened = [ResultStore.open(file)];
    const store = opened[0];
    onTestFinished(() => {
      for (const s of opened) s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const id = store.createRun(RUN);
    store.setRunExamples(id, exs.map((e, ordinal) => ({ ordinal, recordIndex: ordinal, tokens: e.tokens, position: e.position })));
    store.saveBatch(id, rowsFromResults(exs.slice(0, saved), RUN.techniques));
    const reopen = () => opened[opened.push(ResultStore.open(file)) - 1];
    return { store, id, reopen };
  }

  /** Equal up to the order of summation: SQL adds in its order, the sweep in its own. */
  function expectSame(a: LayerSummary[], b: LayerSummary[]): void {
    expect(a.map((s) => [s.technique, s.layer, s.n])).toEqual(b.map((s) => [s.technique, s.layer, s.n]));
    a.forEach((s, i) => {
      for (const m of ['precision', 'surprisal', 'surprisalPaper'] as const) {
        for (const f of ['mean', 'low', 'high'] as const satisfies (keyof Interval)[]) {
          const [x, y] = [s[m][f], b[i][m][f]];
          if (y === null) expect(x, `${s.technique}@${s.layer} ${m}.${f}`).toBeNull();
          else expect(x, `${s.technique}@${s.layer} ${m}.${f}`).toBeCloseTo(y, 10);
        }
      }
    });
  }

  it('the SQL summary equals the JS summary, Wilson and t intervals included', () => {
    const exs = results(23, 5);
    const { store, id } = stored(exs);
    const sql = store.summary(id);
    expectSame(sql, summarize(exs));
    expect(sql.find((s) => s.technique === 'logit_lens' && s.layer === 2)!.precision).toEqual({ mean: 1, low: expect.closeTo(0.8569, 4), high: 1 });
    expect(sql.find((s) => s.technique === 'logit_lens' && s.layer === 0)!.precision).toEqual({ mean: 0, low: 0, high: expect.closeTo(0.1431, 4) });
  });

  it('of a single example, both give null surprisal bounds', () => {
    const exs = results(1, 9);
    const { store, id } = stored(exs);
    const sql = store.summary(id);
    expectSame(sql, summarize(exs));
    expect(sql.every((s) => s.n === 1 && s.surprisal.low === null && s.surprisalPaper.high === null)).toBe(true);
  });

  it('the summary of an interrupted run covers the examples saved, and says how many', () => {
    const exs = results(10, 3);
    const { store: computing, id, reopen } = stored(exs, 4);
    computing.close(); // as if its process had died: the run is left running, with 4 of 10 examples saved
    const store = reopen();
    expect(store.getRun(id)).toMatchObject({ status: 'interrupted', examplesDone: 4, examplesPlanned: 10 });
    const sql = store.summary(id);
    expect(sql.every((s) => s.n === 4)).toBe(true);
    expectSame(sql, summarize(exs.slice(0, 4)));
  });
});
