import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, test } from 'vitest';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-behaviours-'));
const bin = path.resolve('bin/logitscope.js');
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');

function envFor(db: string) {
  return { ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'cache'), LOGITSCOPE_DB: path.join(tmp, db) };
}

async function cli(args: string[], opts: { db?: string; cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { env: envFor(opts.db ?? 'results.sqlite'), cwd: opts.cwd ?? tmp });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const sweepArgs = (...extra: string[]) => ['sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--layers', '0-2', ...extra];
const runCount = async (db: string) => (await cli(['runs', 'list'], { db })).stdout.split('\n').filter((l) => /^[0-9a-f]{8} /.test(l)).length;

/** The CLI behaviours a scripted user relies on (issue "Trust", item 5), each as its own case. */
describe('the command line behaves as scripts expect', () => {
  let runId = '';

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 5 });
    const texts = Array.from({ length: 30 }, (_, i) => JSON.stringify({ text: `Line ${i} of text about ${['boats', 'birds', 'bread'][i % 3]} and weather.` }));
    fs.writeFileSync(data, [...texts, '{broken', JSON.stringify({ title: 'no text' }), JSON.stringify({ text: 'word '.repeat(300) })].join('\n'));
    const r = await cli(sweepArgs('--limit', '6'));
    expect(r.code, r.stderr).toBe(0);
    runId = /run ([0-9a-f-]{36})/.exec(r.stderr)![1];
  });

  test('records left out are counted on the console, by reason', async () => {
    // No --limit: the reader stops as soon as a limited slice is full, before the bad lines at the end.
    const r = await cli(sweepArgs(), { db: 'skips.sqlite' });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/1 filtered out/);
    expect(r.stderr).toMatch(/skipped: .*1 malformed JSON/);
    expect(r.stderr).toMatch(/1 no text/);
  });

  test('runs export takes the format from the file name, and refuses a name it cannot read', async () => {
    for (const ext of ['csv', 'parquet', 'json']) {
      const out = path.join(tmp, `export.${ext}`);
      expect((await cli(['runs', 'export', runId.slice(0, 8), '--out', out])).code).toBe(0);
      const head = fs.readFileSync(out).subarray(0, 4).toString('latin1');
      expect(head).toBe({ csv: 'run_', parquet: 'PAR1', json: '{"mo' }[ext]);
    }
    const r = await cli(['runs', 'export', runId, '--out', path.join(tmp, 'export.txt')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot tell the format.*--format/);
  });

  test('every command accepts the 8-character ids that runs list prints, --resume included', async () => {
    const short = runId.slice(0, 8);
    expect((await cli(['runs', 'show', short])).stdout).toContain(runId);
    const r = await cli(['sweep', '--resume', short]);
    expect(r.stderr).toMatch(/already complete/);
    expect(r.code).toBe(2);
  });

  test('negative values parse in every documented form and are then validated', async () => {
    const ok = await cli(sweepArgs('--layers', '-1,0,2', '--limit', '2'), { db: 'neg.sqlite' });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^\s+-1\s/m);
    const bad = await cli(sweepArgs('--limit', '-5'), { db: 'neg.sqlite' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).not.toMatch(/ambiguous/);
    expect(bad.stderr).toMatch(/^\[argument_invalid\] --limit must be at least 1$/m);
  });

  test('invalid settings are refused before a run is created', async () => {
    const db = 'invalid.sqlite';
    await cli(sweepArgs('--limit', '1'), { db });
    const before = await runCount(db);
    const cases: [string[], RegExp][] = [
      [['sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--layers', '0-27'], /\[layer_out_of_range\].*0\.\.2/],
      [sweepArgs('--top-k', '100000'), /\[argument_invalid\] --top-k must be at most 100$/m],
      [sweepArgs('--prompt', 'x ->', '--prompt-layer', '9'), /\[layer_out_of_range\].*target layer 9/],
      [sweepArgs('--json', path.join(tmp, 'no', 'such', 'folder', 'out.json')), /\[output_unwritable\].*does not exist/],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli(args, { db });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(pattern);
    }
    expect(await runCount(db)).toBe(before);
  });

  test('a relative --model path is stored absolute, so --resume works from another folder', async () => {
    const db = 'relative.sqlite';
    const r = await cli(['sweep', '--model', 'model', '--data', 'data.jsonl', '--preset', 'logitscope', '--limit', '2'], { db });
    expect(r.code, r.stderr).toBe(0);
    const id = /run ([0-9a-f-]{36})/.exec(r.stderr)![1];
    const shown = await cli(['runs', 'show', id], { db, cwd: os.tmpdir() });
    expect(shown.stdout).toContain(`model ${fs.realpathSync(model)}:`);
  });

  test('overriding one filter rule keeps the preset\'s other rule, as the run records it', async () => {
    const out = path.join(tmp, 'filter.json');
    const r = await cli(sweepArgs('--max-chars', '60', '--limit', '2', '--json', out), { db: 'filter.sqlite' });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(out, 'utf8')).protocol.filter).toEqual({ maxWords: 200, maxChars: 60 });
  });

  test('--resume with other settings is refused, naming them', async () => {
    const r = await cli(['sweep', '--resume', runId, '--layers', '0', '--top-k', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/drop --layers, --top-k/);
  });

  test('Ctrl-C stores the finished batches and exits 130; SIGTERM exits 143', async () => {
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const db = `signal-${signal}.sqlite`;
      const child = spawn(process.execPath, [bin, ...sweepArgs('--strategy', 'naive', '--batch-size', '1')], { env: envFor(db), cwd: tmp });
      let stderr = '';
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      await new Promise<void>((resolve) =>
        child.stderr.on('data', (chunk) => {
          stderr += chunk;
          if (/\d+\/\d+ examples/.test(stderr)) resolve();
        }),
      );
      child.kill(signal);
      expect(await exited, stderr).toBe(code);
      const list = await cli(['runs', 'list'], { db });
      expect(list.stdout).toMatch(/cancelled\s+[1-9]\d*\/\d+ ex/);
    }
  });

  test('extract shows non-ASCII characters as text, not byte escapes', async () => {
    const r = await cli(['extract', '--model', model, '--text', 'café 東京', '--layers', '0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/café|東京|é|東/);
    expect(r.stdout).not.toMatch(/\\u00|Ã©/);
  });

  test('--help works on every command and runs nothing', async () => {
    for (const command of ['extract', 'sweep', 'runs', 'doctor', 'dataset', 'serve', 'start']) {
      const r = await cli([command, '--help']);
      expect(r.code, command).toBe(0);
      expect(r.stdout, command).toMatch(/^usage: logitscope/);
    }
  });
});
