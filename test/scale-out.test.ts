import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SweepRequest } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { mergeShards } from '../src-main/scale/merge.ts';
import { parseShard } from '../src-main/protocol/shards.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { differences } from './scale-out-compare.ts';

// Scale out (issue 18): a sweep split into shards, each computed into its own results database,
// merged into one run whose export is the unsharded run's. Every database is a real SQLite file
// and every shard a real sweep on the tiny GPT-J checkpoint.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-out-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const cacheRoot = path.join(tmp, 'graphs');
const db = (name: string) => path.join(tmp, `${name}.sqlite`);
const LIMIT = 11; // not a multiple of 3: the shards get 4, 4 and 3 examples

const REQUEST: SweepRequest = {
  files: [data],
  preset: 'logitscope',
  overrides: { limit: LIMIT, positionSeed: 5 },
  techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }, { id: 'custom', prompt: 'x y', targetLayer: { kind: 'fixed', layer: 0 } }],
  layers: [-1, 0, 1],
  k: 4,
  name: 'scaled',
};

/** Opens a Lab on `file`, runs `fn`, closes it (a Lab per database, as each shard's process has). */
async function withLab<T>(file: string, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.open({ dbPath: file, cacheRoot });
  try {
    return await fn(lab);
  } finally {
    await lab.close();
  }
}

async function sweepInto(file: string, request: SweepRequest): Promise<string> {
  return withLab(file, async (lab) => {
    await lab.call('model.load', { dir: model });
    const { runId } = await lab.call('sweep.start', request);
    await lab.settled(runId);
    expect((await lab.call('runs.get', { runId })).status).toBe('completed');
    return runId;
  });
}

/** The run's JSON export and CSV table, less what names this particular run (its id, times, timings). */
async function exported(file: string, runId: string): Promise<{ json: Record<string, unknown>; csv: string[] }> {
  return withLab(file, async (lab) => {
    const json = JSON.parse((await lab.call('runs.export', { runId, format: 'json' })).content!);
    const { id, created_at, updated_at, timings, ...run } = json.run;
    expect([id, created_at, updated_at, timings]).not.toContain(undefined);
    const csv = (await lab.call('runs.export', { runId, format: 'csv' })).content!.trim().split('\r\n').map((line) => line.replace(/^[^,]*,/, ''));
    return { json: { ...json, run }, csv };
  });
}

/** CSV lines as fields, numbers (and space-separated top-k lists) as numbers. */
const cells = (lines: string[]) => lines.map((l) => l.split(',').map((f) => f.split(' ').map((x) => (x !== '' && !Number.isNaN(Number(x)) ? Number(x) : x))));

const shardFiles = [0, 1, 2].map((i) => db(`shard-${i}`));
let unshardedId: string;
let unsharded: Awaited<ReturnType<typeof exported>>;

beforeAll(async () => {
  writeTinyGptj({ dir: model, format: 'safetensors', seed: 18 });
  const words = 'harbour lantern meadow copper violin thunder pebble saffron glacier orchard'.split(' ');
  const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: Array.from({ length: 3 + (i % 7) }, (_, j) => words[(i * 3 + j * 7) % words.length]).join(' '), meta: { pile_set_name: i % 2 ? 'Wiki' : 'Web' } }));
  fs.writeFileSync(data, lines.join('\n'));
  unshardedId = await sweepInto(db('unsharded'), REQUEST);
  unsharded = await exported(db('unsharded'), unshardedId);
  for (const [i, file] of shardFiles.entries()) await sweepInto(file, { ...REQUEST, shard: { index: i, count: 3 } });
}, 240_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('shards', () => {
  test('i/N is read as shard i of N, and 3/3, -1/2, a/b, 0/0 are refused naming --shard', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1 });
    for (const bad of ['3/3', '-1/2', 'a/b', '0/0', '1', '']) {
      expect(() => parseShard(bad), bad).toThrow(expect.objectContaining({ code: 'argument_invalid', path: '--shard' }));
    }
  });

  test('the command line refuses a bad --shard before loading anything, with exit code 2', async () => {
    const err = await promisify(execFile)(process.execPath, ['bin/logitscope.js', 'sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--shard', '3/3', '--db', db('never')]).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/\[argument_invalid\] --shard: .*i must be below N/);
    expect(fs.existsSync(db('never'))).toBe(false);
  });

  test('--shard without --db is refused before any work, so a shard never writes into the main database', async () => {
    const main = db('main-never');
    const err = await promisify(execFile)(process.execPath, ['bin/logitscope.js', 'sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--limit', '30', '--shard', '0/2'], {
      env: { ...process.env, LOGITSCOPE_DB: main, LOGITSCOPE_CACHE_DIR: cacheRoot },
    }).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(err?.code).toBe(2);
    expect(err?.stderr.trim().split('\n')[0]).toMatch(/^\[argument_invalid\] --shard: --shard writes its own results database: add --db FILE \(e\.g\. --db shard-0-of-2\.db\)/);
    expect(fs.existsSync(main)).toBe(false);
  });

  test('a shard with no examples says so and exits with status 3, and its database still records the slice', async () => {
    const file = db('empty-shard');
    const r = await promisify(execFile)(process.execPath, ['bin/logitscope.js', 'sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--limit', String(LIMIT), '--shard', '20/30', '--db', file], {
      env: { ...process.env, LOGITSCOPE_CACHE_DIR: cacheRoot },
    }).then(() => null, (e: { code: number; stdout: string; stderr: string }) => e);
    expect(r?.code).toBe(3);
    expect(r?.stderr).toMatch(new RegExp(`shard 20/30 has no examples: the slice has ${LIMIT}, so only shards 0\\.\\.${LIMIT - 1} of 30 compute any; nothing was computed`));
    expect(r?.stdout).not.toMatch(/parity/);
    await withLab(file, async (lab) => {
      const [run] = await lab.call('runs.list', {});
      expect(run).toMatchObject({ status: 'completed', examplesPlanned: LIMIT, examplesDone: 0 });
    });
  });

  test('each shard records the whole slice and computes the examples whose ordinal ≡ i (mod 3)', async () => {
    for (const [i, file] of shardFiles.entries()) {
      await withLab(file, async (lab) => {
        const [run] = await lab.call('runs.list', {});
        const detail = await lab.call('runs.get', { runId: run.id });
        expect(detail.dataset.shard).toEqual({ index: i, count: 3 });
        expect(detail.examplesPlanned).toBe(LIMIT);
        const done = (await lab.call('runs.examples', { runId: run.id, offset: 0, limit: 500, sort: { by: 'ordinal', technique: 'logit_lens', layer: 0 } })).rows.map((e) => e.ordinal);
        expect(done).toEqual(Array.from({ length: LIMIT }, (_, o) => o).filter((o) => o % 3 === i));
      });
    }
  });
});

describe('merge', () => {
  test('the export comparison allows float32 rounding, and nothing else', () => {
    expect(differences({ p: [0.25, 7.0000001], top1: 5, hook: 'x' }, { p: [0.25, 7], top1: 5, hook: 'x' })).toEqual([]);
    expect(differences({ p: 7.001 }, { p: 7 })).toEqual(['$.p: 7.001 vs 7']);
    expect(differences({ top1: 5 }, { top1: 6 })).toEqual(['$.top1: 5 vs 6']);
    expect(differences({ ids: [1, 2] }, { ids: [1, 2, 3] })).toEqual(['$.ids: length 2 vs 3']);
    expect(differences({ a: 1 }, { a: 1, b: null })).toEqual(['$.b: undefined vs null']);
  });

  test('three shards merged give the unsharded run: rows, summaries and provenance', async () => {
    const report = await withLab(db('merged'), (lab) => lab.call('runs.merge', { files: shardFiles }));
    expect(report).toMatchObject({ status: 'completed', examplesPlanned: LIMIT, examplesDone: LIMIT, copied: LIMIT, missing: [] });
    const merged = await exported(db('merged'), report.runId);
    expect((merged.json.examples as unknown[]).length).toBe(LIMIT);
    expect(differences(merged.json, unsharded.json)).toEqual([]); // examples, summary, model, protocol, dataset, run settings
    expect(differences(cells(merged.csv), cells(unsharded.csv))).toEqual([]);
  });

  test('merging again, in any order, changes nothing', async () => {
    const before = await withLab(db('merged'), async (lab) => {
      const [run] = await lab.call('runs.list', {});
      return (await lab.call('runs.export', { runId: run.id, format: 'json' })).content;
    });
    const again = await withLab(db('merged'), (lab) => lab.call('runs.merge', { files: [...shardFiles].reverse() }));
    expect(again.copied).toBe(0);
    await withLab(db('merged'), async (lab) => {
      expect(await lab.call('runs.list', {})).toHaveLength(1);
      expect((await lab.call('runs.export', { runId: again.runId, format: 'json' })).content).toBe(before); // updated_at included
    });
  });

  test('shards that miss part of the slice are refused with the missing ordinals, and --allow-partial marks the run', async () => {
    const partialDb = db('partial');
    const refused = await withLab(partialDb, (lab) => lab.call('runs.merge', { files: [shardFiles[0], shardFiles[2]] }).catch((e) => e));
    expect(refused).toMatchObject({ code: 'shards_incomplete' });
    expect(refused.message).toMatch(/4 of 11 examples are missing: ordinals 1, 4, 7, 10 \(of shard 1\/3\)/);
    await withLab(partialDb, async (lab) => expect(await lab.call('runs.list', {})).toEqual([])); // nothing written

    const partial = await withLab(partialDb, (lab) => lab.call('runs.merge', { files: [shardFiles[0], shardFiles[2]], allowPartial: true }));
    expect(partial).toMatchObject({ status: 'failed', examplesDone: 7, missing: [1, 4, 7, 10] });
    await withLab(partialDb, async (lab) => {
      const run = await lab.call('runs.get', { runId: partial.runId });
      expect(run.error).toMatchObject({ code: 'shards_incomplete' });
    });
    // The missing shard arrives later: the same run is completed, and equals the unsharded one.
    const completed = await withLab(partialDb, (lab) => lab.call('runs.merge', { files: [shardFiles[1]] }));
    expect(completed).toMatchObject({ runId: partial.runId, status: 'completed', copied: 4, missing: [] });
    expect(differences((await exported(partialDb, completed.runId)).json, unsharded.json)).toEqual([]);
  });

  test('a merge interrupted halfway is finished by running it again', async () => {
    const file = db('interrupted');
    // What a killed merge leaves: the run written with some shards' rows, still marked running, its process gone.
    const store = ResultStore.open(file);
    const half = mergeShards(store, { files: [shardFiles[0]], finish: false });
    store.close();
    await withLab(file, async (lab) => expect(await lab.call('runs.get', { runId: half.runId })).toMatchObject({ status: 'interrupted', examplesDone: 4 }));
    const again = await withLab(file, (lab) => lab.call('runs.merge', { files: shardFiles }));
    expect(again).toMatchObject({ runId: half.runId, status: 'completed', copied: LIMIT - 4, missing: [] });
    expect(differences((await exported(file, again.runId)).json, unsharded.json)).toEqual([]);
  });

  test('a partial merge can be finished by resuming the merged run in one process', async () => {
    const file = db('resume-partial');
    const partial = await withLab(file, (lab) => lab.call('runs.merge', { files: [shardFiles[1]], allowPartial: true }));
    expect(partial.missing).toHaveLength(7);
    await withLab(file, async (lab) => {
      await lab.call('model.load', { dir: model });
      await lab.call('sweep.resume', { runId: partial.runId });
      await lab.settled(partial.runId);
    });
    expect(differences((await exported(file, partial.runId)).json, unsharded.json)).toEqual([]);
  });

  test('shards of different sweeps are refused, naming what differs, and nothing is written', async () => {
    const other = db('other-seed');
    await sweepInto(other, { ...REQUEST, overrides: { ...REQUEST.overrides, positionSeed: 6 }, shard: { index: 1, count: 3 } });
    const refused = await withLab(db('mismatch'), (lab) => lab.call('runs.merge', { files: [shardFiles[0], other, shardFiles[2]] }).catch((e) => e));
    expect(refused).toMatchObject({ code: 'shards_mismatch', path: other });
    expect(refused.message).toMatch(/its protocol differs \(positionSeed: 5 vs 6\)/);

    const twoWay = db('two-way');
    await sweepInto(twoWay, { ...REQUEST, shard: { index: 1, count: 2 } });
    const counts = await withLab(db('mismatch'), (lab) => lab.call('runs.merge', { files: [shardFiles[0], twoWay] }).catch((e) => e));
    expect(counts).toMatchObject({ code: 'shards_mismatch' });
    expect(counts.message).toMatch(/shard count differs \(3 vs 2\)/);

    const unshardedDb = await withLab(db('mismatch'), (lab) => lab.call('runs.merge', { files: [db('unsharded')] }).catch((e) => e));
    expect(unshardedDb).toMatchObject({ code: 'shards_mismatch', message: expect.stringMatching(/holds no shard run/) });
    await withLab(db('mismatch'), async (lab) => expect(await lab.call('runs.list', {})).toEqual([]));
  }, 120_000);
});
