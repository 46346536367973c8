/**
 * Issue 23's command-line cases, through the real command line (a child process per command, real
 * SQLite files, real onnxruntime sessions): a tuned-lens fit stopped by SIGTERM, environment
 * failures (a full disk, a cache path that is a file, a database of an unknown schema version) as
 * coded errors, lens slices never changed silently, and messages in the command line's own words.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Lab } from '../src-main/api/lab.ts';
import { SCHEMA_VERSION } from '../src-main/store/schema.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { BIN, runCli } from './fixtures/cli.ts';
import { writeTopicRecords } from './fixtures/records.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-trust-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const env = (extra: Record<string, string> = {}) => ({ ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'cache'), LOGITSCOPE_DB: path.join(tmp, 'results.sqlite'), ...extra });

const cli = (args: string[], extraEnv: Record<string, string> = {}) => runCli(args, env(extraEnv), { cwd: tmp });

beforeAll(() => {
  writeTinyGptj({ dir: model, format: 'safetensors', seed: 9 });
  writeTopicRecords(data, 60);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('a tuned-lens fit is cancelled promptly', () => {
  test('SIGTERM during the fit: the process exits within a second or two with 143, no run is created, and no lens (nor half of one) is left in the cache', async () => {
    const cache = path.join(tmp, 'cache-sigterm');
    const db = path.join(tmp, 'sigterm.sqlite');
    // The demo model fits its lens on ~1,900 train examples: long enough (tens of seconds) to be stopped.
    const child = spawn(process.execPath, [BIN, 'sweep', '--demo', '--limit', '5', '--techniques', 'logit_lens,tuned_lens'], { env: env({ LOGITSCOPE_CACHE_DIR: cache, LOGITSCOPE_DB: db }), cwd: tmp });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += String(b)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Wait for the fit's progress line (the first batch of train examples collected), then stop it.
    await new Promise<void>((resolve, reject) => {
      const check = () => (/tuned lens: \d+\/\d+ train examples collected/.test(stderr) ? resolve() : undefined);
      child.stderr.on('data', check);
      child.on('exit', () => reject(new Error(`exited before the fit started:\n${stderr}`)));
    });
    const sent = performance.now();
    child.kill('SIGTERM');
    const code = await exited;
    const seconds = (performance.now() - sent) / 1000;
    expect(code, stderr).toBe(143);
    expect(seconds).toBeLessThan(3);
    expect(stderr).toMatch(/cancelling: nothing has been computed yet, so no run will be created/);
    expect(stderr).toMatch(/cancelled after .*: the tuned-lens fit was cancelled/);
    expect(stderr).not.toMatch(/\[unexpected\]/);
    // No run, not even an empty cancelled one.
    const list = await cli(['runs', 'list', '--db', db]);
    expect(list.stdout).not.toMatch(/^[0-9a-f]{8} /m);
    // Nothing half-written: no lens folder, no temporary folder.
    const files = fs.readdirSync(cache, { recursive: true }).map(String);
    expect(files.filter((f) => f.includes('tuned-lens') || f.includes('partial')).filter((f) => !/tuned-lens$/.test(f))).toEqual([]);
    console.log(`SIGTERM to exit during a fit: ${seconds.toFixed(2)} s`);
  }, 120_000);
});

describe('messages in the command line’s words', () => {
  const sweep = (...extra: string[]) => ['sweep', '--model', model, '--data', data, '--preset', 'logitscope', ...extra];

  test('the CLI names its flags where the API names payload paths, and rewords the validator’s ranges; nothing is created', async () => {
    const fresh = path.join(tmp, 'never-created.sqlite');
    const cases: [string[], string][] = [
      [sweep('--limit', '0'), '[argument_invalid] --limit must be at least 1'],
      [sweep('--top-k', '0'), '[argument_invalid] --top-k must be at least 1'],
      [sweep('--batch-size', '0'), '[argument_invalid] --batch-size must be at least 1'],
      [sweep('--shard', '0/5000', '--db', path.join(tmp, 'shard.sqlite')), "[argument_invalid] --shard's N (i/N) must be at most 4096"],
      [sweep('--pool-end', '0', '--eval-start', '-3'), '[argument_invalid] 2 problems with the options\n  - --pool-end must be at least 1\n  - --eval-start must be at least 0'],
    ];
    for (const [args, first] of cases) {
      const r = await cli([...args, '--db', fresh]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trimEnd(), args.join(' ')).toBe(first);
    }
    // Validation answers before any run exists.
    expect((await cli(['runs', 'list', '--db', fresh])).stdout).not.toMatch(/^[0-9a-f]{8} /m);
  }, 120_000);

  test('extract explains --position -1 and an empty --text, instead of a range or "required"', async () => {
    const negative = await cli(['extract', '--model', model, '--text', 'hello there', '--position', '-1']);
    expect(negative.code).toBe(2);
    expect(negative.stderr).toMatch(/^\[argument_invalid\] --position -1: positions count tokens from 0 .*leave --position out to read the last token, or give --positions all/);
    const empty = await cli(['extract', '--model', model, '--text', '']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^\[argument_invalid\] --text is empty: give the prompt to read/);
    expect(empty.stderr).not.toMatch(/required/);
  }, 60_000);

  test('a dataset directory is "a directory: give the files in it"', async () => {
    const r = await cli(['dataset', 'preview', '--data', tmp, '--preset', 'logitscope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^\\[dataset_unsupported\\] ${tmp}: is a directory: give the files in it`));
  });

  test('CJK and emoji in a prompt are shown as text in the CLI table and in the API token text, not as <0x..> bytes', async () => {
    const text = '日本語の猫🐱 is';
    const json = path.join(tmp, 'cjk.json');
    const r = await cli(['extract', '--model', model, '--text', text, '--positions', 'all', '--layers', '0', '--top-k', '2', '--json', json]);
    expect(r.code, r.stderr).toBe(0);
    // The header row: one column per prompt token (a top-k cell may still be a lone byte token).
    const header = r.stdout.split('\n').find((l) => l.startsWith('layer '))!;
    expect(header).not.toMatch(/<0x/);
    for (const c of ['"日"', '"本"', '"語"', '"猫"', '"🐱"', '" is"']) expect(header).toContain(c);
    // The export record keeps ids; the API's token text (the view's tokens) is what the CLI printed.
    expect(JSON.parse(fs.readFileSync(json, 'utf8')).examples).toHaveLength(header.match(/"/g)!.length / 2);
    // The API's token text: extract.tokenize as the app's Extract view asks it.
    const lab = await Lab.open({ dbPath: path.join(tmp, 'tokenize.sqlite'), cacheRoot: path.join(tmp, 'cache') });
    try {
      await lab.call('model.load', { dir: model });
      const { tokens } = await lab.call('extract.tokenize', { text });
      expect(tokens.map((t) => t.text).join('')).toBe(text);
      expect(tokens.some((t) => t.text.includes('<0x'))).toBe(false);
    } finally {
      await lab.close();
    }
    const one = await cli(['extract', '--model', model, '--text', text]);
    expect(one.stdout).toMatch(/^position \d+ of \d+ tokens: …".*🐱 is"$/m);
  }, 60_000);
});

describe('lens slices are never changed silently', () => {
  const lensSweep = (...extra: string[]) => ['sweep', '--model', model, '--data', data, '--techniques', 'logit_lens,tuned_lens', ...extra];

  test('an early evaluation slice of a shuffled pool is refused with the settings that fix it; a train range past the pool with the pool’s size', async () => {
    const fresh = path.join(tmp, 'lens-slices.sqlite');
    const early = await cli([...lensSweep('--preset', 'patchscopes', '--pool-end', '60', '--eval-start', '30', '--limit', '4'), '--db', fresh]);
    expect(early.code).toBe(2);
    expect(early.stderr.trimEnd()).toBe(
      '[argument_invalid] --lens-train: tuned lens: the default train slice is the 10000 items before the evaluation slice, but it starts at item 30, so only 30 come before it; train on those (lens.train {start: 0, end: 30}; --lens-train 0-29) or start the evaluation at item 10000 or later (overrides.evalStart; --eval-start 10000)',
    );
    // The fix it names works.
    const fixed = await cli([...lensSweep('--preset', 'patchscopes', '--pool-end', '60', '--eval-start', '30', '--limit', '4', '--lens-train', '0-29'), '--db', fresh]);
    expect(fixed.code, fixed.stderr).toBe(0);
    const past = await cli([...lensSweep('--preset', 'logitscope', '--pool-end', '10', '--limit', '4', '--lens-train', '0-99999999'), '--db', fresh]);
    expect(past.code).toBe(2);
    expect(past.stderr).toMatch(/^\[argument_invalid\] --lens-train: tuned lens: the train pool holds 100000 records \(records 10\.\.100009\), so its items are 0\.\.99999; .*--lens-train 0-99999\)$/m);
    const overlap = await cli([...lensSweep('--preset', 'patchscopes', '--pool-end', '60', '--eval-start', '30', '--limit', '4', '--lens-train', '20-39'), '--db', fresh]);
    expect(overlap.code).toBe(2);
    expect(overlap.stderr).toMatch(/overlaps the evaluation slice, items 30\.\.33 of the same pool; train on items before it \(.*--lens-train 0-29\), or train on items after it \(.*--lens-train 34-53\), or move the evaluation slice to start at item 40/);
  }, 180_000);
});

describe('what the environment does is a coded error with the path and the fix, never [unexpected]', () => {
  const enospc = path.resolve('test/fixtures/enospc.mjs');
  /** The CLI with a full disk under `full`, injected by test/fixtures/enospc.mjs into the real process. */
  const cliFull = (full: string, args: string[], extra: Record<string, string> = {}) => cli(args, { LOGITSCOPE_TEST_ENOSPC: full, NODE_OPTIONS: `--import ${enospc}`, ...extra });
  let runId = '';

  beforeAll(async () => {
    const r = await cli(['sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--limit', '3', '--db', path.join(tmp, 'env.sqlite')]);
    expect(r.code, r.stderr).toBe(0);
    runId = /run ([0-9a-f-]{36})/.exec(r.stderr)![1];
  }, 60_000);

  const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  test('ENOSPC on --out (csv, parquet, json) and on --json (sweep, extract): output_unwritable naming the file, exit 2, nothing left under its name', async () => {
    const full = path.join(tmp, 'full-disk');
    fs.mkdirSync(full);
    const db = path.join(tmp, 'env.sqlite');
    const cases: [string[], string, string][] = [
      [['runs', 'export', runId, '--out', path.join(full, 'run.csv'), '--db', db], path.join(full, 'run.csv'), '--out'],
      [['runs', 'export', runId, '--out', path.join(full, 'run.parquet'), '--db', db], path.join(full, 'run.parquet'), '--out'],
      [['runs', 'export', runId, '--out', path.join(full, 'run.json'), '--db', db], path.join(full, 'run.json'), '--out'],
      [['sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--limit', '3', '--db', db, '--json', path.join(full, 'sweep.json')], path.join(full, 'sweep.json'), '--json'],
      [['extract', '--model', model, '--text', 'hello there', '--db', db, '--json', path.join(full, 'extract.json')], path.join(full, 'extract.json'), '--json'],
    ];
    for (const [args, file, flag] of cases) {
      const r = await cliFull(full, args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      const last = r.stderr.trimEnd().split('\n').at(-1)!;
      const kept = args[0] === 'extract' ? '' : `; run ${args[0] === 'runs' ? runId : '[0-9a-f-]{36}'} is stored: \`logitscope runs export .* --out FILE\` writes it`;
      expect(last).toMatch(new RegExp(`^${escapeRe(`[output_unwritable] ${flag}: no space left to write ${file} (ENOSPC); nothing was written under that name: free some space on its disk, or write elsewhere`)}${kept}$`));
      expect(r.stderr).not.toMatch(/unexpected|    at /);
    }
    expect(fs.readdirSync(full)).toEqual([]);
  }, 180_000);

  test('ENOSPC in the cache folder while a lens is written: cache_full with the folder and the fix, and no half lens', async () => {
    const cache = path.join(tmp, 'cache-full');
    const r = await cliFull(cache, ['sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--pool-end', '10', '--limit', '3', '--techniques', 'logit_lens,tuned_lens', '--db', path.join(tmp, 'full-cache.sqlite')], { LOGITSCOPE_CACHE_DIR: cache });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^\\[cache_full\\] ${cache}/.*/tuned-lens/[0-9a-f]{64}: no space left in the cache folder .*point LOGITSCOPE_CACHE_DIR at another folder`));
    expect(r.stderr).not.toMatch(/unexpected|    at /);
    expect(fs.readdirSync(cache, { recursive: true }).map(String).filter((f) => /tuned-lens\/./.test(f))).toEqual([]);
  }, 120_000);

  test('LOGITSCOPE_CACHE_DIR naming a file, or a path through one: cache_dir_unusable with the path and the fix', async () => {
    const file = path.join(tmp, 'not-a-folder');
    fs.writeFileSync(file, 'x');
    const a = await cli(['extract', '--model', model, '--text', 'hi'], { LOGITSCOPE_CACHE_DIR: file });
    expect(a.code).toBe(2);
    expect(a.stderr.trimEnd()).toBe(`[cache_dir_unusable] ${file}: the cache folder is a file, not a folder: point LOGITSCOPE_CACHE_DIR at a folder (it is created if missing), or remove the file`);
    const b = await cli(['extract', '--model', model, '--text', 'hi'], { LOGITSCOPE_CACHE_DIR: path.join(file, 'sub') });
    expect(b.code).toBe(2);
    expect(b.stderr.trimEnd()).toMatch(/^\[cache_dir_unusable\] .*not-a-folder\/sub: a part of the cache path is a file, not a folder \(ENOTDIR/);
  }, 60_000);

  test('a results database whose user_version is 0 or -1: cache_schema_unknown naming the file, for reading and writing commands alike, and the file is unchanged', async () => {
    const { default: Database } = await import('better-sqlite3');
    for (const version of [0, -1]) {
      const db = path.join(tmp, `version${version}.sqlite`);
      fs.copyFileSync(path.join(tmp, 'env.sqlite'), db);
      const raw = new Database(db);
      raw.pragma('wal_checkpoint(TRUNCATE)');
      raw.pragma(`user_version = ${version}`);
      raw.close();
      const before = fs.readFileSync(db);
      for (const args of [['runs', 'list'], ['sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--limit', '2']]) {
        const r = await cli([...args, '--db', db]);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr.trimEnd()).toBe(
          `[cache_schema_unknown] ${db}: this results database records schema version ${version}, which no Logitscope writes (versions are 1..${SCHEMA_VERSION}); it was changed by hand or damaged: restore it from a backup, or use another database (--db FILE or LOGITSCOPE_DB) — the file was not changed`,
        );
      }
      expect(fs.readFileSync(db).equals(before)).toBe(true);
    }
  }, 120_000);
});
