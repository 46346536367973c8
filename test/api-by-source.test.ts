import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExampleView } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-by-source-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const N = 11;
/** Uneven on purpose (5, 4, 2), so the order by n is fixed; the last two records name no source. */
const SOURCES = ['Pile-CC', 'Wikipedia (en)', 'Pile-CC', 'Wikipedia (en)', 'Pile-CC', 'Wikipedia (en)', 'Pile-CC', 'Wikipedia (en)', 'Pile-CC', undefined, undefined];

describe('runs.bySource: a run split by data source', () => {
  let lab: Lab;
  let runId: string;
  let examples: ExampleView[];

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 17 });
    const lines = SOURCES.map((s, i) => JSON.stringify({ text: `Line ${i} talks about the ${['river', 'mountain', 'market'][i % 3]} today.`, ...(s && { meta: { pile_set_name: s } }) }));
    fs.writeFileSync(data, lines.join('\n'));
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    await lab.call('model.load', { dir: model });
    const finished = new Promise<void>((resolve) => lab.onEvent((name, p: any) => name === 'sweep.finished' && p.runId === runId && resolve()));
    ({ runId } = await lab.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, k: 3 }));
    await finished;
    examples = await Promise.all(Array.from({ length: N }, (_, ordinal) => lab.call('runs.example', { runId, ordinal })));
  }, 120_000);
  afterAll(async () => lab?.close());

  test('per source and layer, n and the mean precision and surprisals match a count over the examples', async () => {
    for (const technique of ['logit_lens', 'logitscope']) {
      const reply = await lab.call('runs.bySource', { runId, technique });
      expect(reply).toMatchObject({ technique });
      const expected = new Map<string, ExampleView[]>();
      for (const ex of examples) expected.set(ex.source ?? '(none)', [...(expected.get(ex.source ?? '(none)') ?? []), ex]);
      expect(reply.sources.map((s) => [s.source, s.n])).toEqual([['Pile-CC', 5], ['Wikipedia (en)', 4], ['(none)', 2]]);
      for (const s of reply.sources) {
        const group = expected.get(s.source)!;
        const layers = [...new Set(group[0].cells.filter((c) => c.technique === technique).map((c) => c.layer))].sort((a, b) => a - b);
        expect(s.summary.map((row) => row.layer)).toEqual(layers);
        for (const row of s.summary) {
          const cells = group.map((ex) => ex.cells.find((c) => c.technique === technique && c.layer === row.layer)!);
          const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
          expect(row).toMatchObject({ technique, n: group.length });
          expect(row.precision.mean).toBeCloseTo(mean(cells.map((c) => (c.correct ? 1 : 0))), 12);
          expect(row.surprisal.mean).toBeCloseTo(mean(cells.map((c) => c.surprisal)), 9);
          expect(row.surprisalPaper.mean).toBeCloseTo(mean(cells.map((c) => c.surprisalPaper)), 9);
        }
      }
    }
  });

  test("the sources' n add up to the run's, layer by layer", async () => {
    const run = await lab.call('runs.get', { runId });
    const { sources } = await lab.call('runs.bySource', { runId, technique: 'logit_lens' });
    for (const row of run.summary.filter((r) => r.technique === 'logit_lens')) {
      expect(sources.reduce((sum, s) => sum + s.summary.find((x) => x.layer === row.layer)!.n, 0)).toBe(row.n);
    }
    expect(sources.reduce((sum, s) => sum + s.n, 0)).toBe(N);
  });

  test('a technique the run does not have is refused with the field named', async () => {
    expect(await lab.dispatch('runs.bySource', { runId, technique: 'tuned_lens' })).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'technique' } });
  });
});
