import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { EventName } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-lab-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');

describe('the API handlers (real engine, real SQLite file)', () => {
  let lab: Lab;
  const events: { name: EventName; payload: any }[] = [];

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 41 });
    const lines = Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: `Sentence number ${i} is about the ${['sea', 'sky', 'city'][i % 3]}.`, meta: { pile_set_name: 'Test' } }));
    fs.writeFileSync(data, lines.join('\n'));
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    lab.onEvent((name, payload) => events.push({ name, payload }));
  });
  afterAll(async () => lab?.close());

  const waitFor = (pred: () => boolean) => expect.poll(pred, { timeout: 30_000 }).toBe(true);

  test('bad requests come back as coded envelopes, never as thrown errors', async () => {
    expect(await lab.dispatch('no.such.request', {})).toMatchObject({ ok: false, error: { code: 'argument_invalid' } });
    expect(await lab.dispatch('model.load', 'not an object')).toMatchObject({ ok: false, error: { code: 'argument_invalid' } });
    expect(await lab.dispatch('model.load', { dir: 42 })).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'dir' } });
    expect(await lab.dispatch('model.load', { dir: tmp })).toMatchObject({ ok: false, error: { code: 'config_missing' } });
    expect(await lab.dispatch('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }], layers: null })).toMatchObject({
      ok: false,
      error: { code: 'model_not_loaded', message: 'load a model first' },
    });
  });

  test('a model loads and is described with its config, dtype and device', async () => {
    const view = await lab.call('model.load', { dir: model });
    expect(view).toMatchObject({ format: 'safetensors', weightDtype: 'F32', computeDtype: 'float32', device: 'cpu', config: { nLayers: 3, dModel: 64, dVocab: 50400 } });
    expect(await lab.call('model.current', {})).toEqual(view);
    expect(events.some((e) => e.name === 'model.changed')).toBe(true);
  });

  test('a dataset preview counts what passes the filter and shows samples; a file that does not parse is a clear error', async () => {
    const preview = await lab.call('dataset.preview', { files: [data], preset: 'logitscope', overrides: { filter: { maxChars: 36 } }, sampleCount: 2 });
    const short = fs.readFileSync(data, 'utf8').split('\n').filter((l) => JSON.parse(l).text.length < 36).length;
    expect(short).toBeGreaterThan(0);
    expect(short).toBeLessThan(12);
    expect(preview).toMatchObject({ scanned: 12, passed: short, filteredOut: 12 - short, capped: false });
    expect(preview.samples).toHaveLength(2);
    const broken = path.join(tmp, 'broken.parquet');
    fs.writeFileSync(broken, 'this is not parquet');
    expect(await lab.dispatch('dataset.preview', { files: [broken], preset: 'logitscope' })).toMatchObject({ ok: false, error: { code: 'dataset_parse' } });
  });

  test('a sweep with nothing selected is refused with the field named', async () => {
    const base = { files: [data], preset: 'logitscope', layers: null };
    expect(await lab.dispatch('sweep.start', { ...base, techniques: [] })).toMatchObject({ ok: false, error: { path: 'techniques' } });
    expect(await lab.dispatch('sweep.start', { ...base, techniques: [{ id: 'logit_lens' }], layers: [] })).toMatchObject({ ok: false, error: { path: 'layers' } });
    expect(await lab.dispatch('sweep.start', { ...base, files: [], techniques: [{ id: 'logit_lens' }] })).toMatchObject({ ok: false, error: { path: 'files' } });
  });

  test('a sweep runs in the background, reports progress, and its run can be reviewed, inspected, compared, exported and deleted', async () => {
    const { runId } = await lab.call('sweep.start', {
      files: [data],
      preset: 'logitscope',
      techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }, { id: 'custom', prompt: 'word: ?', targetLayer: { kind: 'fixed', layer: 0 } }],
      layers: null,
      k: 3,
      requestId: 'first sweep',
    });
    await waitFor(() => events.some((e) => e.name === 'sweep.finished' && e.payload.runId === runId));
    const progress = events.filter((e) => e.name === 'sweep.progress' && e.payload.runId === runId);
    expect(progress.length).toBeGreaterThan(0);
    // Before the run existed, the reading of the slice was reported under the caller's request id.
    const preparing = events.filter((e) => e.name === 'sweep.preparing');
    expect(preparing.at(-1)!.payload).toEqual({ requestId: 'first sweep', scanned: 12, passed: 12, filteredOut: 0 });
    // Every later event of that sweep carries the id too, so a front can follow it before the reply.
    expect(progress.every((e) => e.payload.requestId === 'first sweep')).toBe(true);
    expect(events.find((e) => e.name === 'sweep.finished' && e.payload.runId === runId)!.payload.requestId).toBe('first sweep');
    expect(events.findIndex((e) => e.name === 'sweep.preparing')).toBeLessThan(events.findIndex((e) => e.name === 'sweep.progress' && e.payload.runId === runId));
    expect(progress.at(-1)!.payload.progress.examplesDone).toBe(12);

    const run = await lab.call('runs.get', { runId });
    expect(run).toMatchObject({ status: 'completed', examplesDone: 12, techniques: ['logit_lens', 'logitscope', 'custom_1'], layers: [0, 1, 2] });
    expect(run.summary).toHaveLength(9);
    expect(run.techniquePrompts.custom_1).toMatchObject({ prompt: 'word: ?', targetLayer: 0 });

    const ex = await lab.call('runs.example', { runId, ordinal: 3 });
    expect(ex.tokens[ex.position].text.length).toBeGreaterThan(0);
    expect(ex.cells).toHaveLength(9);
    expect(ex.cells.filter((c) => c.layer === 2 && c.technique !== 'custom_1').every((c) => c.correct)).toBe(true);
    expect(ex.cells[0].topK).toHaveLength(3);

    const list = await lab.call('runs.list', { status: 'completed' });
    expect(list.map((r) => r.id)).toContain(runId);

    const csv = await lab.call('runs.export', { runId, format: 'csv' });
    expect(csv.content!.trim().split('\n')).toHaveLength(1 + 12 * 9);
    const json = JSON.parse((await lab.call("runs.export", { runId, format: "json" })).content!);
    expect(json.examples).toHaveLength(12);

    const again = await lab.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }], layers: [0, 2] });
    await waitFor(() => events.some((e) => e.name === 'sweep.finished' && e.payload.runId === again.runId));
    const rows = await lab.call('runs.compare', { a: runId, b: again.runId });
    expect(rows.find((r) => r.technique === 'logit_lens' && r.layer === 2)).toMatchObject({ a: { n: 12 }, b: { n: 12 } });

    expect(await lab.call('runs.delete', { runId })).toEqual({ deleted: true });
    expect(await lab.dispatch('runs.get', { runId })).toMatchObject({ ok: false, error: { code: 'run_not_found' } });
  });
});
