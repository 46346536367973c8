import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Lab } from '../src-main/api/lab.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

// Validation after the schema (issue 24): one check of a request against its model, every problem
// at once, before any work; and one default top-k, whichever front asks.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'request-checks-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const cacheRoot = path.join(tmp, 'graphs');
const cli = path.resolve('bin/logitscope.js');
const run = promisify(execFile);
let lab: Lab;

beforeAll(async () => {
  writeTinyGptj({ dir: model, format: 'safetensors', seed: 47 }); // 3 layers: 0..2
  fs.writeFileSync(data, Array.from({ length: 8 }, (_, i) => JSON.stringify({ text: `The ${['sea', 'sky'][i % 2]} was calm on day ${i} of the trip.` })).join('\n'));
  lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot });
  await lab.call('model.load', { dir: model });
});
afterAll(async () => {
  await lab?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const SWEEP = { files: [data], preset: 'logitscope' as const, overrides: { limit: 4 } };

describe('a request checked against its model', () => {
  test('a sweep with a bad layer list and a bad fixed target layer reports both at once, each with its path, and creates no run', async () => {
    const reply = await lab.dispatch('sweep.start', {
      ...SWEEP,
      techniques: [{ id: 'logit_lens' }, { id: 'custom', prompt: 'x ->', targetLayer: { kind: 'fixed', layer: 8 } }],
      layers: [0, 5, 9],
    });
    expect(reply).toMatchObject({ ok: false, error: { code: 'layer_out_of_range' } });
    const issues = !reply.ok ? reply.error.issues ?? [] : [];
    expect(issues.map((i) => [i.path, i.code])).toEqual([
      ['layers', 'layer_out_of_range'],
      ['techniques.1.targetLayer.layer', 'layer_out_of_range'],
    ]);
    expect(issues[0].message).toMatch(/layers 5, 9 past the last .*0\.\.2/);
    expect(issues[1].message).toMatch(/target layer 8/);
    expect(await lab.call('runs.list', {})).toEqual([]);
  });

  test('an extraction with problems of different kinds reports every one, each under its own code', async () => {
    const reply = await lab.dispatch('extract', {
      text: 'The sea was calm',
      position: 1,
      positions: { from: 3, to: 1 },
      layers: [7],
      techniques: [{ id: 'logit_lens' }, { id: 'tuned_lens', lens: { ridge: 0.1 } }],
    });
    expect(reply).toMatchObject({ ok: false, error: { code: 'argument_invalid' } });
    const issues = !reply.ok ? reply.error.issues ?? [] : [];
    expect(issues.map((i) => [i.path, i.code])).toEqual([
      ['layers', 'layer_out_of_range'],
      ['techniques.1.lens', 'argument_invalid'],
      ['positions', 'argument_invalid'],
      ['positions', 'argument_invalid'],
    ]);
  });

  test('a single problem reads as before: its own code, path and message, with no list', async () => {
    const reply = await lab.dispatch('extract', { text: 'The sea was calm', layers: [0, 3] });
    expect(reply).toEqual({ ok: false, error: { code: 'layer_out_of_range', path: 'layers', message: expect.stringMatching(/^layer 3 past the last/) } });
  });
});

describe('the default top-k', () => {
  test('is the same for a sweep and an extraction, from the API and from the command line', async () => {
    const ks: Record<string, number> = {};
    const { runId } = await lab.call('sweep.start', { ...SWEEP, techniques: [{ id: 'logit_lens' }], layers: [2] });
    await lab.settled(runId);
    const exported = path.join(tmp, 'api-sweep.json');
    await lab.call('runs.export', { runId, format: 'json', out: exported });
    ks['API sweep'] = JSON.parse(fs.readFileSync(exported, 'utf8')).run.k;
    const view = await lab.call('extract', { text: 'The sea was calm', techniques: [{ id: 'logit_lens' }], layers: [2] });
    ks['API extract'] = view.cells[0].topK.length;
    const saved = await lab.call('extract.save', { text: 'The sea was calm', techniques: [{ id: 'logit_lens' }], layers: [2] });
    await lab.call('runs.export', { runId: saved.runId, format: 'json', out: exported });
    ks['API extract.save'] = JSON.parse(fs.readFileSync(exported, 'utf8')).run.k;

    const env = { ...process.env, LOGITSCOPE_CACHE_DIR: cacheRoot };
    const cliSweep = path.join(tmp, 'cli-sweep.json');
    await run(process.execPath, [cli, 'sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--limit', '4', '--layers', '2', '--techniques', 'logit_lens', '--db', path.join(tmp, 'cli.sqlite'), '--json', cliSweep], { env });
    ks['CLI sweep'] = JSON.parse(fs.readFileSync(cliSweep, 'utf8')).run.k;
    const cliExtract = path.join(tmp, 'cli-extract.json');
    await run(process.execPath, [cli, 'extract', '--model', model, '--text', 'The sea was calm', '--layers', '2', '--techniques', 'logit_lens', '--db', path.join(tmp, 'cli.sqlite'), '--json', cliExtract], { env });
    ks['CLI extract'] = JSON.parse(fs.readFileSync(cliExtract, 'utf8')).examples[0].layers[0].top_k.ids.length;

    // 10, as both commands' help says.
    expect(ks).toEqual({ 'API sweep': 10, 'API extract': 10, 'API extract.save': 10, 'CLI sweep': 10, 'CLI extract': 10 });
  }, 120_000);
});
