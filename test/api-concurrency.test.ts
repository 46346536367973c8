import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Envelope } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-concurrency-'));
const modelA = path.join(tmp, 'model-a');
const modelB = path.join(tmp, 'model-b');
const data = path.join(tmp, 'data.jsonl');

const FINAL = ['completed', 'cancelled', 'failed'];

/**
 * Loading, reloading, sweeping, cancelling, resuming and deleting in any order, with a real engine
 * and a real SQLite file: the process must survive (an engine disposed under a running call
 * aborts it natively), every request must answer with an envelope, and every run must end in a
 * final state.
 */
describe('no order of user actions kills the process or strands a run', () => {
  let lab: Lab;
  const sweep = { files: [data], preset: 'logitscope' as const, techniques: [{ id: 'logit_lens' as const }, { id: 'logitscope' as const }], layers: null, batchSize: 2 };

  beforeAll(async () => {
    writeTinyGptj({ dir: modelA, format: 'safetensors', seed: 11 });
    writeTinyGptj({ dir: modelB, format: 'safetensors', seed: 12 });
    const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `Record ${i} says something about ${['rivers', 'hills', 'towns', 'ships'][i % 4]} and more.` }));
    fs.writeFileSync(data, lines.join('\n'));
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
  });
  afterAll(async () => lab?.close());

  const settleAll = async () => {
    for (const r of await lab.call('runs.list', {})) await lab.settled(r.id);
  };

  test('a sweep started while a model loads waits for that model and runs on it', async () => {
    const loading = lab.dispatch('model.load', { dir: modelA });
    const started = lab.dispatch('sweep.start', sweep);
    expect(await loading).toMatchObject({ ok: true });
    const reply = (await started) as Envelope<{ runId: string }>;
    expect(reply.ok).toBe(true);
    if (!reply.ok) return;
    await lab.settled(reply.result.runId);
    const run = await lab.call('runs.get', { runId: reply.result.runId });
    expect(run.status).toBe('completed');
    expect(run.modelPath).toBe(fs.realpathSync(modelA));
  });

  test('loading another model while a sweep runs is refused with model_busy, and the sweep finishes', async () => {
    const { runId } = await lab.call('sweep.start', { ...sweep, recompute: true });
    expect(await lab.dispatch('model.load', { dir: modelB })).toMatchObject({ ok: false, error: { code: 'model_busy' } });
    await lab.settled(runId);
    expect((await lab.call('runs.get', { runId })).status).toBe('completed');
  });

  test('deleting a running run cancels it first; it is gone and nothing crashes', async () => {
    const { runId } = await lab.call('sweep.start', { ...sweep, recompute: true });
    expect(await lab.dispatch('runs.delete', { runId })).toEqual({ ok: true, result: { deleted: true } });
    expect(await lab.dispatch('runs.get', { runId })).toMatchObject({ ok: false, error: { code: 'run_not_found' } });
  });

  test('a storm of interleaved requests leaves the process alive and every run in a final state', async () => {
    const replies: Promise<Envelope<unknown>>[] = [];
    const runIds: string[] = [];
    const startOne = async (extra: object) => {
      const r = (await lab.dispatch('sweep.start', { ...sweep, ...extra })) as Envelope<{ runId: string }>;
      if (r.ok) runIds.push(r.result.runId);
      return r;
    };
    for (let round = 0; round < 4; round++) {
      const load = lab.dispatch('model.load', { dir: round % 2 ? modelB : modelA });
      const recomputed = startOne({ recompute: true });
      const extracted = lab.dispatch('extract', { text: 'Rivers and hills', bos: true });
      const named = startOne({ name: `storm ${round}` });
      replies.push(load, recomputed, extracted, named);
      // Once this round's starts have answered, its runs exist, so the cancels, resumes and deletes below hit them (and earlier rounds').
      await Promise.all([recomputed, named]);
      for (const id of [...runIds]) {
        replies.push(lab.dispatch(round % 2 ? 'sweep.cancel' : 'sweep.resume', { runId: id }));
        if (round === 3) replies.push(lab.dispatch('runs.delete', { runId: id }));
      }
    }
    const settled = await Promise.all(replies);
    // Every reply is an envelope; refusals carry a code that says why.
    for (const r of settled) {
      expect(typeof r.ok).toBe('boolean');
      if (!r.ok) expect(r.error.code).not.toBe('unexpected');
    }
    await settleAll();
    for (const r of await lab.call('runs.list', {})) expect(FINAL).toContain(r.status);
    // The engine still works afterwards.
    await lab.call('model.load', { dir: modelA });
    const view = await lab.call('extract', { text: 'Ships and towns', bos: true });
    expect(view.cells.length).toBeGreaterThan(0);
  });
});
