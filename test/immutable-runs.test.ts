import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runStoredSweep } from '../src-main/api/sweep-service.ts';
import { Engine } from '../src-main/engine/engine.ts';
import { exportCsv, exportJson } from '../src-main/store/export.ts';
import { exampleKey, techniqueKey } from '../src-main/store/keys.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import { encodeTokens, encodeTopK } from '../src-main/store/rows.ts';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from '../src-main/store/schema.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import type { SweepSpec } from '../src-main/protocol/spec.ts';
import { LOGIT_LENS, LOGITSCOPE, TOKEN_IDENTITY, type ResolvedTechnique } from '../src-main/protocol/techniques.ts';
import { BIN, runCli } from './fixtures/cli.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

// Issue 23, item 2: a finished run never changes. Recomputes, naive verification runs, merges and
// resumes in the same database add rows of their own and leave every finished run's export byte
// for byte as it was. Real SQLite files, real sweeps, and (below) real CLI processes.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'immutable-runs-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const cacheRoot = path.join(tmp, 'graphs');

beforeAll(() => {
  writeTinyGptj({ dir: model, format: 'safetensors', seed: 23 });
  const words = 'amber beacon canyon delta ember falcon granite harbor island jasmine kettle lagoon'.split(' ');
  const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: Array.from({ length: 5 + (i % 8) }, (_, j) => words[(i * 5 + j * 7) % words.length]).join(' ') }));
  fs.writeFileSync(data, lines.join('\n'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('in one database (in process)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.load({ modelDir: model, cacheRoot });
  });
  afterAll(async () => engine?.dispose());
  const spec = (over: Partial<SweepSpec> = {}): SweepSpec => ({
    modelDir: model, device: 'cpu', files: [data], protocol: resolveProtocol('logitscope', { limit: 10 }),
    techniques: [LOGIT_LENS, TOKEN_IDENTITY, LOGITSCOPE], layers: null, k: 5, strategy: 'fast', ...over,
  });
  const surprisals = (examples: { layers: { technique: string; surprisal: number; surprisal_paper: number }[] }[]) =>
    examples.flatMap((e) => e.layers.map((l) => [l.technique, l.surprisal, l.surprisal_paper] as const));

  test('a fast run and a naive --recompute run of the same slice each export the numbers they computed, and the diff gives the largest |Δ| per technique', async () => {
    const store = ResultStore.open(path.join(tmp, 'fast-naive.sqlite'));
    const fast = await runStoredSweep(engine, store, spec());
    const fastExport = JSON.stringify(exportJson(store, fast.runId));
    const naive = await runStoredSweep(engine, store, spec({ strategy: 'naive' }), { recompute: true });

    const fastRows = surprisals(exportJson(store, fast.runId).examples);
    const naiveRows = surprisals(exportJson(store, naive.runId).examples);
    expect(fastRows).toEqual(surprisals(fast.outcome.results.map((r) => r!)));
    expect(naiveRows).toEqual(surprisals(naive.outcome.results.map((r) => r!)));
    expect(JSON.stringify(exportJson(store, fast.runId))).toBe(fastExport);

    const largest = store.largestDifferences(fast.runId, naive.runId);
    expect(largest.map((l) => l.technique)).toEqual(['logit_lens', 'patchscope', 'logitscope']);
    for (const l of largest) {
      const pairs = fastRows.map((f, i) => [f, naiveRows[i]]).filter(([f]) => f[0] === l.technique);
      expect(l.rows).toBe(pairs.length);
      expect(l.surprisal).toBe(Math.max(...pairs.map(([f, n]) => Math.abs(n[1] - f[1]))));
      expect(l.surprisalPaper).toBe(Math.max(...pairs.map(([f, n]) => Math.abs(n[2] - f[2]))));
    }
    // The two strategies differ in the last bits somewhere on this model: that is what the runs must keep apart.
    expect(Math.max(...largest.map((l) => l.surprisal))).toBeGreaterThan(0);

    // Deleting the verification run takes only its own rows.
    store.deleteRun(naive.runId);
    expect(JSON.stringify(exportJson(store, fast.runId))).toBe(fastExport);
    store.close();
  }, 120_000);

  test('a second identical sweep is still served from the cache, and deleting the first leaves it whole', async () => {
    const store = ResultStore.open(path.join(tmp, 'reuse.sqlite'));
    const first = await runStoredSweep(engine, store, spec());
    await runStoredSweep(engine, store, spec({ strategy: 'naive' }), { recompute: true });
    const before = { ...engine.stats };
    const second = await runStoredSweep(engine, store, spec());
    expect(engine.stats.unembedRows - before.unembedRows).toBe(0);
    expect(second.outcome.results).toEqual(first.outcome.results);
    const secondCsv = path.join(tmp, 'second.csv');
    await exportCsv(store, second.runId, secondCsv);
    store.deleteRun(first.runId);
    const after = path.join(tmp, 'second-after.csv');
    await exportCsv(store, second.runId, after);
    expect(fs.readFileSync(after, 'utf8').replaceAll(second.runId, '')).toBe(fs.readFileSync(secondCsv, 'utf8').replaceAll(second.runId, ''));
    store.close();
  }, 120_000);
});

describe('a database of schema version 3', () => {
  test('opens, migrates to the current version, and keeps its runs and their rows', () => {
    const file = path.join(tmp, 'v3.sqlite');
    const raw = new Database(file);
    for (const m of MIGRATIONS.slice(0, 3)) raw.exec(m);
    raw.pragma('user_version = 3');
    raw.pragma(`application_id = ${APPLICATION_ID}`);
    raw.prepare("INSERT INTO models (id, identity) VALUES (1, 'ckpt:float32:cpu')").run();
    raw.prepare('INSERT INTO examples (id, key, tokens, position) VALUES (1, ?, ?, 1)').run(exampleKey([50256, 7, 8], 1), encodeTokens([50256, 7, 8]));
    const lens: ResolvedTechnique = { id: 'logit_lens', kind: 'logit_lens' };
    raw.prepare('INSERT INTO techniques (id, key, json) VALUES (1, ?, ?)').run(techniqueKey(lens), JSON.stringify(lens));
    raw.prepare(
      `INSERT INTO runs (id, status, created_at, updated_at, model_id, model_path, model_json, dataset_json, protocol_json, techniques_json, layers_json, k, strategy, code_version)
       VALUES ('old', 'completed', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 1, '/m', '{}', '{"files":[]}', '{}', ?, '[0,1]', 2, 'fast', 'v3')`,
    ).run(JSON.stringify([lens]));
    raw.prepare("INSERT INTO run_techniques VALUES ('old', 0, 'logit_lens', 1)").run();
    for (const layer of [0, 1]) {
      raw.prepare("INSERT INTO run_layers VALUES ('old', ?)").run(layer);
      raw.prepare('INSERT INTO results VALUES (1, 1, 1, ?, 5, ?, ?, 0.5, 2, ?)').run(layer, 4 + layer, 1.25 + layer, encodeTopK({ ids: [4 + layer, 9], probs: [0.5, 0.25] }));
    }
    raw.prepare("INSERT INTO run_examples VALUES ('old', 0, 1, 0, NULL, 'text', 1)").run();
    raw.close();

    const store = ResultStore.open(file);
    expect(store.getRun('old')).toMatchObject({ status: 'completed', examplesDone: 1, ownsRows: false });
    expect(store.runResults('old')).toEqual([{
      tokens: [50256, 7, 8], position: 1, reference_top1: 5,
      layers: [0, 1].map((layer) => ({ layer, technique: 'logit_lens', top1: 4 + layer, surprisal: 1.25 + layer, surprisal_paper: 0.5, top_k: { ids: [4 + layer, 9], probs: [0.5, 0.25] }, kl: null, rank: null, entropy: null })),
    }]);
    store.close();
    const check = new Database(file, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    check.close();
  });
});

describe('from the command line, in one database', () => {
  const main = path.join(tmp, 'main.sqlite');
  const env = { ...process.env, LOGITSCOPE_CACHE_DIR: cacheRoot };
  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return runCli(args, env);
  }
  const sweepArgs = (...extra: string[]) => ['sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--layers', '0-2', '--top-k', '4', ...extra];
  const runIdOf = (stderr: string) => /run ([0-9a-f-]{36})/.exec(stderr)![1];
  let exports = 0;
  /** The run's CSV export, as bytes. */
  async function exported(runId: string): Promise<Buffer> {
    const out = path.join(tmp, `export-${++exports}.csv`);
    const r = await cli(['runs', 'export', runId, '--out', out, '--db', main]);
    expect(r.code, r.stderr).toBe(0);
    return fs.readFileSync(out);
  }

  test('a finished run exports byte for byte the same after a naive recompute, a merge of shards, a resume and a repeated sweep', async () => {
    const fast = await cli(sweepArgs('--limit', '8', '--db', main));
    expect(fast.code, fast.stderr).toBe(0);
    const fastId = runIdOf(fast.stderr);
    const original = await exported(fastId);

    const naive = await cli(sweepArgs('--limit', '8', '--strategy', 'naive', '--recompute', '--db', main));
    expect(naive.code, naive.stderr).toBe(0);
    const naiveId = runIdOf(naive.stderr);
    expect(await exported(fastId)).toEqual(original);
    const naiveExport = await exported(naiveId);

    const diff = await cli(['runs', 'diff', fastId, naiveId, '--db', main]);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout.split('\n')[0]).toBe(`B − A paired over 8 shared examples: A = ${fastId.slice(0, 8)}, B = ${naiveId.slice(0, 8)}`);
    expect(diff.stdout).toMatch(/^logit_lens +max \|Δ surprisal\| \S+ +max \|Δ surprisal_paper\| \S+ +top-1 differs in \d+ of 24 rows$/m);

    // Shards of the same slice (computed elsewhere, other batches), merged into this database.
    const shards = [0, 1].map((i) => path.join(tmp, `shard-${i}.sqlite`));
    for (const [i, file] of shards.entries()) expect((await cli(sweepArgs('--limit', '8', '--batch-size', '3', '--shard', `${i}/2`, '--db', file))).code).toBe(0);
    const merged = await cli(['runs', 'merge', ...shards, '--into', main]);
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stdout).toMatch(/completed, 8\/8 examples \(8 copied by this merge\)/);
    expect(await exported(fastId)).toEqual(original);
    expect(await exported(naiveId)).toEqual(naiveExport);

    // A naive recompute of a longer slice, stopped with SIGTERM after a few batches (it holds there: LOGITSCOPE_TEST_HOLD), then resumed.
    const child = spawn(process.execPath, [BIN, ...sweepArgs('--limit', '14', '--strategy', 'naive', '--recompute', '--batch-size', '1', '--db', main)], { env: { ...env, LOGITSCOPE_TEST_HOLD: '2' }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await expect.poll(() => fs.existsSync(`${main}.held`), { timeout: 60_000 }).toBe(true);
    const peek = ResultStore.open(main, { readonly: true });
    const stopped = peek.listRuns().find((r) => r.examplesPlanned === 14 && r.examplesDone === 2);
    peek.close();
    expect(stopped).toBeDefined();
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    const resumed = await cli(['sweep', '--resume', stopped!.id, '--db', main]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await exported(fastId)).toEqual(original);
    expect(await exported(naiveId)).toEqual(naiveExport);

    const repeated = await cli(sweepArgs('--limit', '8', '--db', main));
    expect(repeated.code).toBe(0);
    const again = await exported(runIdOf(repeated.stderr));
    expect(again.toString('utf8').replaceAll(runIdOf(repeated.stderr), fastId)).toBe(original.toString('utf8'));
    expect(await exported(fastId)).toEqual(original);
  }, 300_000);
});
