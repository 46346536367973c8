/**
 * A run's "Copy as command" (api/command.ts), run in a shell as a user would paste it: it
 * computes the same run again — same settings, same numbers.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { layerRanges, shellWord } from '../src-main/api/command.ts';
import { Lab } from '../src-main/api/lab.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'reproduce-'));
const model = path.join(tmp, "a model's dir");
const data = path.join(tmp, 'lines, with a comma.jsonl');
const db = path.join(tmp, 'results.sqlite');
const bin = path.resolve('bin/logitscope.js');

describe('the command that computes a run again', () => {
  let lab: Lab;
  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 11 });
    fs.writeFileSync(data, Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: `Line ${i} is about the ${['sea', 'sky', 'hills'][i % 3]} today.` })).join('\n'));
    lab = await Lab.open({ dbPath: db, cacheRoot: path.join(tmp, 'cache') });
  });
  afterAll(async () => lab?.close());

  test('words are quoted for a POSIX shell only where needed, and layers read as ranges', () => {
    expect(shellWord('/models/gpt-j-6b')).toBe('/models/gpt-j-6b');
    expect(shellWord("it's here")).toBe(`'it'\\''s here'`);
    expect(layerRanges([-1, 0, 1, 2, 5, 7, 8])).toBe('-1-2,5,7-8');
  });

  test('pasted into a shell, it makes a run with the same settings and the same numbers', async () => {
    await lab.call('model.load', { dir: model });
    const { runId } = await lab.call('sweep.start', {
      files: [data],
      preset: 'patchscopes',
      overrides: { poolEnd: 12, evalStart: 2, evalEnd: 11, shuffleSeed: 7, filter: { maxWords: 40 }, bos: true, positionSeed: 3 },
      techniques: [{ id: 'logit_lens' }, { id: 'custom', prompt: "x's -> ?", targetLayer: { kind: 'fixed', layer: 1 } }],
      layers: [0, 2],
      k: 4,
      strategy: 'naive',
      name: 'the original, "quoted"',
    });
    await lab.settled(runId);
    const original = await lab.call('runs.get', { runId });
    expect(original.status).toBe('completed');
    await lab.close();

    const command = original.command!.replace(/^npx logitscope /, `${process.execPath} ${bin} `) + ` --db ${shellWord(db)}`;
    const { stderr } = await run('/bin/sh', ['-c', command], { env: { ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'cache') } });
    const again = /run ([0-9a-f-]{36})/.exec(stderr)![1];
    expect(again).not.toBe(runId);

    lab = await Lab.open({ dbPath: db, cacheRoot: path.join(tmp, 'cache') });
    const copy = await lab.call('runs.get', { runId: again });
    for (const key of ['protocol', 'techniquePrompts', 'layers', 'strategy', 'files', 'modelPath', 'device', 'computeDtype', 'name'] as const) {
      expect(copy[key], key).toEqual(original[key]);
    }
    const rows = async (id: string) => ((await lab.call('runs.export', { runId: id, format: 'csv' })).content ?? '').split('\r\n').map((l) => l.slice(l.indexOf(',') + 1));
    expect(await rows(again)).toEqual(await rows(runId));
    expect(copy.command).toBe(original.command);
  });
});
