import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExampleView, Payload } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-inspector-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const N = 14;

describe('runs.examples: finding the examples that matter, in SQL, agrees with the examples themselves', () => {
  let lab: Lab;
  let runId: string;
  /** Every example as runs.example gives it: the independent side of each comparison. */
  let examples: ExampleView[];

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 41 });
    const sources = ['Wiki', 'Code', 'Books'];
    const lines = Array.from({ length: N }, (_, i) => JSON.stringify({ text: `Line ${i} tells of the ${['sea', 'sky', 'city', 'hill'][i % 4]} at dawn.`, meta: { pile_set_name: sources[i % 3] } }));
    fs.writeFileSync(data, lines.join('\n'));
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    await lab.call('model.load', { dir: model });
    ({ runId } = await lab.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, k: 3 }));
    await lab.settled(runId);
    const run = await lab.call('runs.get', { runId });
    expect(run).toMatchObject({ status: 'completed', examplesDone: N });
    examples = await Promise.all(Array.from({ length: N }, (_, ordinal) => lab.call('runs.example', { runId, ordinal })));
  });
  afterAll(async () => lab?.close());

  const cellOf = (e: ExampleView, technique: string, layer: number) => e.cells.find((c) => c.technique === technique && c.layer === layer)!;
  const query = (q: Partial<Payload<'runs.examples'>>) => lab.call('runs.examples', { runId, offset: 0, limit: 500, ...q });

  test('"logit lens wrong at layer 0" lists exactly the examples whose layer-0 logit lens top-1 is not the reference, in order', async () => {
    const page = await query({ filter: { technique: 'logit_lens', layer: 0, correct: false } });
    const expected = examples.filter((e) => !cellOf(e, 'logit_lens', 0).correct);
    expect(expected.length).toBeGreaterThan(0);
    expect(page.cell).toEqual({ technique: 'logit_lens', layer: 0 });
    expect(page.total).toBe(expected.length);
    expect(page.rows.map((r) => r.ordinal)).toEqual(expected.map((e) => e.ordinal));
    for (const row of page.rows) {
      const e = examples[row.ordinal];
      const c = cellOf(e, 'logit_lens', 0);
      expect(row).toMatchObject({ recordIndex: e.recordIndex, source: e.source, reference: e.reference, correct: false, surprisal: c.surprisal, surprisalPaper: c.surprisalPaper });
      expect(row.top1).toEqual({ id: c.top1, text: c.topK[0].text });
      expect(row.layers).toEqual(e.cells.filter((x) => x.technique === 'logit_lens').map((x) => ({ layer: x.layer, correct: x.correct, surprisal: x.surprisal })));
    }
  });

  test('sorting by either surprisal at another cell, descending, matches a sort of the examples; ties keep run order', async () => {
    for (const by of ['surprisal', 'surprisalPaper'] as const) {
      const page = await query({ filter: { technique: 'logitscope', layer: 1 }, sort: { by, technique: 'logitscope', layer: 1, descending: true } });
      const expected = [...examples].sort((a, b) => cellOf(b, 'logitscope', 1)[by] - cellOf(a, 'logitscope', 1)[by] || a.ordinal - b.ordinal);
      expect(page.rows.map((r) => r.ordinal)).toEqual(expected.map((e) => e.ordinal));
    }
    const ascending = await query({ sort: { by: 'surprisal', technique: 'logit_lens', layer: 2 } });
    const values = ascending.rows.map((r) => r.surprisal);
    expect(values).toEqual([...values].sort((a, b) => a - b));
  });

  test('reference token, source and a surprisal threshold filter together, and pages add up to the total', async () => {
    const reference = examples[0].reference.id;
    const byReference = await query({ filter: { referenceToken: reference } });
    expect(byReference.rows.map((r) => r.ordinal)).toEqual(examples.filter((e) => e.reference.id === reference).map((e) => e.ordinal));

    const byText = await query({ filter: { referenceText: examples[0].reference.text } });
    expect(byText.rows.map((r) => r.ordinal)).toEqual(byReference.rows.map((r) => r.ordinal));
    expect(await lab.dispatch('runs.examples', { runId, offset: 0, limit: 5, filter: { referenceText: ' two words' } })).toMatchObject({
      ok: false,
      error: { path: 'filter.referenceText' },
    });

    const threshold = [...examples.map((e) => cellOf(e, 'logitscope', 0).surprisal)].sort((a, b) => a - b)[Math.floor(N / 2)];
    const combined = await query({ filter: { technique: 'logitscope', layer: 0, source: 'Code', minSurprisal: threshold } });
    const expected = examples.filter((e) => e.source === 'Code' && cellOf(e, 'logitscope', 0).surprisal > threshold);
    expect(combined.rows.map((r) => r.ordinal)).toEqual(expected.map((e) => e.ordinal));

    const pages = [await query({ offset: 0, limit: 5 }), await query({ offset: 5, limit: 5 }), await query({ offset: 10, limit: 5 })];
    expect(pages.map((p) => p.total)).toEqual([N, N, N]);
    expect(pages.flatMap((p) => p.rows.map((r) => r.ordinal))).toEqual(examples.map((e) => e.ordinal));
    expect((await query({ offset: 100, limit: 5 })).rows).toEqual([]);
  });

  test('a technique or layer the run does not have is refused with its field named', async () => {
    expect(await lab.dispatch('runs.examples', { runId, offset: 0, limit: 5, filter: { technique: 'patchscope' } })).toMatchObject({
      ok: false,
      error: { code: 'argument_invalid', path: 'filter.technique' },
    });
    expect(await lab.dispatch('runs.examples', { runId, offset: 0, limit: 5, sort: { by: 'surprisal', technique: 'logit_lens', layer: 7 } })).toMatchObject({
      ok: false,
      error: { code: 'argument_invalid', path: 'sort.layer' },
    });
  });
});
