import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resumeStoredSweep, runStoredSweep } from '../src-main/api/sweep-service.ts';
import { Engine, type EngineStats } from '../src-main/engine/engine.ts';
import { exportJson } from '../src-main/store/export.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import type { SweepSpec } from '../src-main/protocol/spec.ts';
import { LOGIT_LENS, LOGITSCOPE, TOKEN_IDENTITY } from '../src-main/protocol/techniques.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sweep-cache-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const cacheRoot = path.join(tmp, 'graphs');

function delta(after: EngineStats, before: EngineStats) {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof EngineStats]]));
}

describe('sweeps through the results cache (a real SQLite file)', () => {
  let engine: Engine;
  let stores = 0;
  // Each test starts from its own empty database, so one test's cached rows cannot serve another.
  const freshStore = () => ResultStore.open(path.join(tmp, `results-${++stores}.sqlite`));
  const spec = (limit: number, over: Partial<SweepSpec> = {}): SweepSpec => ({
    modelDir: model,
    device: 'cpu',
    files: [data],
    protocol: resolveProtocol('logitscope', { limit }),
    techniques: [LOGIT_LENS, TOKEN_IDENTITY, LOGITSCOPE],
    layers: null,
    k: 5,
    strategy: 'fast',
    ...over,
  });

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 31 });
    const words = 'river stone light garden window paper music winter table silver orange mountain'.split(' ');
    const lines = Array.from({ length: 60 }, (_, i) => JSON.stringify({ text: Array.from({ length: 4 + (i % 9) }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ') }));
    fs.writeFileSync(data, lines.join('\n'));
    engine = await Engine.load({ modelDir: model, cacheRoot });
  });
  afterAll(async () => engine?.dispose());

  test('a second identical sweep is served from the cache and computes nothing', async () => {
    const store = freshStore();
    const first = await runStoredSweep(engine, store, spec(8));
    const before = { ...engine.stats };
    const second = await runStoredSweep(engine, store, spec(8));
    expect(delta(engine.stats, before)).toEqual({ sourceRuns: 0, sourceRows: 0, patchedRuns: 0, patchedRows: 0, unembedRuns: 0, unembedRows: 0, naiveRuns: 0, lensRuns: 0, lensRows: 0 });
    expect(second.runId).not.toBe(first.runId);
    expect(second.outcome.results).toEqual(first.outcome.results);
    expect(store.getRun(second.runId)).toMatchObject({ status: 'completed', examplesDone: 8 });
  });

  test('a sweep that extends a past one computes only what is missing', async () => {
    const store = freshStore();
    const layers = [0, 1];
    await runStoredSweep(engine, store, spec(10, { techniques: [LOGIT_LENS], layers }));
    const before = { ...engine.stats };
    // Two more examples, one more layer and one more technique.
    await runStoredSweep(engine, store, spec(12, { techniques: [LOGIT_LENS, LOGITSCOPE], layers: [0, 1, 2] }));
    const d = delta(engine.stats, before);
    // Old examples: logit lens at layer 2 and the logitscope at 3 layers; new examples: all 2 × 3 rows.
    expect(d.unembedRows).toBe(10 * (1 + 3) + 2 * 6);
    expect(d.patchedRows).toBe(12 * 3);
    // The source pass is shared by everything an example lacks, so it runs once for every example.
    expect(d.sourceRows).toBe(12);
  });

  test('a cancelled sweep resumes to exactly the numbers of an uninterrupted one', async () => {
    const store = freshStore();
    const controller = new AbortController();
    let batches = 0;
    const cancelled = await runStoredSweep(engine, store, spec(20), {
      signal: controller.signal,
      maxBatchExamples: 3,
      onProgress: () => ++batches === 2 && controller.abort(),
    });
    expect(cancelled.outcome.status).toBe('cancelled');
    expect(store.getRun(cancelled.runId).examplesDone).toBe(6);
    const resumed = await resumeStoredSweep(engine, store, cancelled.runId, { maxBatchExamples: 3 });
    expect(resumed.outcome.status).toBe('completed');

    const fresh = freshStore();
    const whole = await runStoredSweep(engine, fresh, spec(20), { maxBatchExamples: 3 });
    expect(exportJson(store, cancelled.runId).examples).toEqual(exportJson(fresh, whole.runId).examples);
    fresh.close();
  });

  test('resuming a run with another model is refused', async () => {
    const store = freshStore();
    const other = path.join(tmp, 'other-model');
    writeTinyGptj({ dir: other, format: 'safetensors', seed: 32 });
    const { runId } = await runStoredSweep(engine, store, spec(2));
    const otherEngine = await Engine.load({ modelDir: other, cacheRoot });
    try {
      await expect(resumeStoredSweep(otherEngine, store, runId)).rejects.toMatchObject({ code: 'model_mismatch' });
    } finally {
      await otherEngine.dispose();
    }
  });
});

describe('a sweep killed with SIGKILL', () => {
  const cli = (args: string[], env: Record<string, string> = {}) =>
    spawn(process.execPath, [path.resolve('bin/logitscope.js'), ...args], {
      env: { ...process.env, LOGITSCOPE_CACHE_DIR: cacheRoot, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const finished = (child: ReturnType<typeof cli>) =>
    new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ? null : code)));

  test('resumes with `sweep --resume` to results identical to an uninterrupted run', async () => {
    const db = path.join(tmp, 'killed.sqlite');
    const args = ['sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--limit', '40', '--batch-size', '1'];
    // The sweep holds once 3 of its 40 examples are committed (LOGITSCOPE_TEST_HOLD), so the kill lands mid-run however fast it computes.
    const child = cli([...args, '--db', db], { LOGITSCOPE_TEST_HOLD: '3' });
    const exited = finished(child);
    await expect.poll(() => fs.existsSync(`${db}.held`), { timeout: 60_000 }).toBe(true);
    const peek = ResultStore.open(db, { readonly: true });
    const [{ id: runId }] = peek.listRuns();
    peek.close();
    child.kill('SIGKILL');
    expect(await exited).toBeNull();
    const killed = ResultStore.open(db);
    const atKill = killed.getRun(runId);
    killed.close();
    expect(atKill.status).toBe('interrupted');
    expect(atKill.examplesDone).toBe(3);

    const resumed = cli(['sweep', '--resume', runId, '--db', db, '--batch-size', '1', '--json', path.join(tmp, 'resumed.json')]);
    expect(await finished(resumed)).toBe(0);
    const whole = cli([...args, '--db', path.join(tmp, 'whole.sqlite'), '--json', path.join(tmp, 'whole.json')]);
    expect(await finished(whole)).toBe(0);
    const read = (f: string) => JSON.parse(fs.readFileSync(path.join(tmp, f), 'utf8'));
    const [a, b] = [read('resumed.json'), read('whole.json')];
    expect(a.status).toBe('completed');
    expect(a.examples).toHaveLength(40);
    expect(a.examples).toEqual(b.examples);
    expect(a.summary).toEqual(b.summary);
  });
});
