import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ResultStore } from '../src-main/store/result-store.ts';
import { runCli } from './fixtures/cli.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

// Issue 23, item 4: a full disk at any stage of a sweep is cache_full with the database's path and
// advice that works. The disk is "full" through LOGITSCOPE_DB_MAX_BYTES (SQLite's max_page_count):
// past the cap every write fails with SQLITE_FULL, exactly as on a full disk, without filling one.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'disk-full-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'cache'), ...extraEnv };
  return runCli(args, env);
}

const sweepArgs = (db: string, ...extra: string[]) => ['sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--limit', '150', '--layers', '0-1', '--batch-size', '8', '--db', db, ...extra];

/** An empty results database (the schema only) and its size: the cap is set from it. */
function emptyDatabase(name: string): { db: string; size: number } {
  const db = path.join(tmp, name);
  ResultStore.open(db).close();
  return { db, size: fs.statSync(db).size };
}

const examplesOf = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')).examples;
let whole: unknown[];

beforeAll(async () => {
  writeTinyGptj({ dir: model, format: 'safetensors', seed: 4 });
  const words = 'amber beacon canyon delta ember falcon granite harbor island jasmine kettle lagoon'.split(' ');
  fs.writeFileSync(data, Array.from({ length: 200 }, (_, i) => JSON.stringify({ text: Array.from({ length: 6 + (i % 5) }, (_, j) => words[(i * 5 + j * 7) % words.length]).join(' ') })).join('\n'));
  const r = await cli([...sweepArgs(path.join(tmp, 'whole.sqlite')), '--json', path.join(tmp, 'whole.json')]);
  expect(r.code, r.stderr).toBe(0);
  whole = examplesOf(path.join(tmp, 'whole.json'));
  expect(whole).toHaveLength(150);
}, 120_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('a full disk during a sweep', () => {
  test('while the slice is stored: cache_full says to resume, and the resume stores the slice and finishes the run', async () => {
    // At the empty schema's size the run's row still fits in the pages there, its 150 examples do not.
    const { db, size } = emptyDatabase('slice.sqlite');
    const full = await cli(sweepArgs(db), { LOGITSCOPE_DB_MAX_BYTES: String(size) });
    expect(full.code).toBe(2);
    const line = full.stderr.trim().split('\n').at(-1)!;
    const m = /^\[cache_full\] (\S+): the disk holding this results database is full \(or the database reached its size limit\) while the slice was stored; run ([0-9a-f-]{36}) was created without its examples — free some space, then `logitscope sweep --resume \2 --db (\S+)` stores the slice again \(from the same files\) and computes it$/.exec(line);
    expect(m, line).not.toBeNull();
    expect([m![1], m![3]]).toEqual([db, db]);
    const runId = m![2];
    const list = await cli(['runs', 'list', '--db', db]);
    expect(list.stdout).toMatch(new RegExp(`^${runId.slice(0, 8)} .* failed +0/150 ex`, 'm'));

    const resumed = await cli(['sweep', '--resume', runId, '--db', db, '--json', path.join(tmp, 'slice.json')]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr.split('\n')[0]).toBe(`resuming run ${runId}: 0 of 150 examples already stored`);
    expect(examplesOf(path.join(tmp, 'slice.json'))).toEqual(whole);
  }, 120_000);

  test('while batches are stored: cache_full says which run keeps its batches, and the resume continues it', async () => {
    const { db, size } = emptyDatabase('batches.sqlite');
    const full = await cli(sweepArgs(db), { LOGITSCOPE_DB_MAX_BYTES: String(size + 64 * 1024) });
    expect(full.code).toBe(2);
    const line = full.stderr.trim().split('\n').at(-1)!;
    const m = /^\[cache_full\] (\S+): .*; run ([0-9a-f-]{36}) keeps every batch saved before this one — free some space, then `logitscope sweep --resume \2 --db \1` continues where it stopped$/.exec(line);
    expect(m, line).not.toBeNull();
    const kept = ResultStore.open(db, { readonly: true });
    const before = kept.getRun(m![2]);
    kept.close();
    expect(before.status).toBe('failed');
    expect(before.examplesDone).toBeGreaterThan(0);
    expect(before.examplesDone).toBeLessThan(150);

    const resumed = await cli(['sweep', '--resume', m![2], '--db', db, '--json', path.join(tmp, 'batches.json')]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(examplesOf(path.join(tmp, 'batches.json'))).toEqual(whole);
  }, 120_000);

  test('a resume whose slice was never stored is refused with dataset_changed once the file no longer holds what the run read', async () => {
    const { db, size } = emptyDatabase('changed.sqlite');
    const copy = path.join(tmp, 'copy.jsonl');
    fs.copyFileSync(data, copy);
    const args = sweepArgs(db).map((a) => (a === data ? copy : a));
    const full = await cli(args, { LOGITSCOPE_DB_MAX_BYTES: String(size) });
    expect(full.code).toBe(2);
    const runId = /run ([0-9a-f-]{36}) was created without its examples/.exec(full.stderr)![1];
    fs.appendFileSync(copy, '\n{"text": "one more record"}');
    const refused = await cli(['sweep', '--resume', runId, '--db', db]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^warning: .*copy\.jsonl no longer matches what run [0-9a-f]{8} read \(size \d+ → \d+ bytes, sha256 [0-9a-f]{12}… → [0-9a-f]{12}…\)/m);
    expect(refused.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^\\[dataset_changed\\] ${copy}: run ${runId}'s slice was never stored, and this file no longer holds what the run read \\(size \\d+ → \\d+ bytes`));
  }, 120_000);

  test('while the --json output is written: output_unwritable names the file, leaves nothing under its name, and runs export writes it later', async () => {
    // The export goes through OUT.partial: pointed at /dev/full, every write of it fails with ENOSPC.
    const out = path.join(tmp, 'out.json');
    fs.symlinkSync('/dev/full', `${out}.partial`);
    const db = path.join(tmp, 'output.sqlite');
    const r = await cli([...sweepArgs(db), '--json', out]);
    expect(r.code).toBe(2);
    const line = r.stderr.trim().split('\n').at(-1)!;
    const m = new RegExp(`^\\[output_unwritable\\] --json: no space left to write ${out} \\(ENOSPC\\); nothing was written under that name: free some space on its disk, or write elsewhere; run ([0-9a-f-]{36}) is stored: \`logitscope runs export \\1 --out FILE\` writes it$`).exec(line);
    expect(m, line).not.toBeNull();
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(`${out}.partial`)).toBe(false);
    const exported = await cli(['runs', 'export', m![1], '--out', out, '--db', db]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(examplesOf(out)).toEqual(whole);
  }, 120_000);
});
