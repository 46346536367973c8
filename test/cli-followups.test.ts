/**
 * Review follow-ups, through the real command line (a child process per command, a real SQLite
 * file, real onnxruntime sessions on tiny random GPT-J checkpoints):
 * - the padding cut-off is the tokenizer's base vocabulary (50257) even with GPT-J's 143 added
 *   tokens, in tokenizer.json and vocab.json + merges.txt + added_tokens.json checkpoints;
 * - device strings: --devices is checked by the engine's parser, as --device, before anything opens;
 * - doctor says whether a WebGPU adapter is found, with the reason, within its timeout;
 * - --lens-train / --lens-ridge / --lens-seed reach the fitted lens, `runs show` and the exports'
 *   technique_detail column, and bad values are refused before any work;
 * - sweep prints the run's parity line, the same line `runs show` prints.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { probeWebGpu } from '../src-main/api/doctor-service.ts';
import { DEMO } from '../src-main/app-paths.ts';
import { Lab } from '../src-main/api/lab.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { parseCsv } from './fixtures/csv.ts';
import { runCli } from './fixtures/cli.ts';
import { writeTopicRecords } from './fixtures/records.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-followups-'));
const db = path.join(tmp, 'results.sqlite');
const env = { ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'cache'), LOGITSCOPE_DB: db };

const cli = (args: string[], extraEnv: Record<string, string> = {}) => runCli(args, { ...env, ...extraEnv }, { cwd: tmp });

/** GPT-2's base vocabulary: ids at or past it are padding rows of GPT-J's 50400-row head. */
const BASE_VOCAB = 50257;

const jsonModel = path.join(tmp, 'model-tokenizer-json');
const filesModel = path.join(tmp, 'model-vocab-merges');
const data = path.join(tmp, 'lines.jsonl');

beforeAll(() => {
  // Both with GPT-J's <|extratoken_1..143|> at 50257..50399, as EleutherAI/gpt-j-6b publishes them.
  writeTinyGptj({ dir: jsonModel, format: 'safetensors', seed: 5, tokenizer: 'tokenizer.json', extraTokens: true });
  writeTinyGptj({ dir: filesModel, format: 'safetensors', seed: 6, tokenizer: 'vocab+merges', extraTokens: true });
  expect(fs.existsSync(path.join(filesModel, 'added_tokens.json'))).toBe(true);
  writeTopicRecords(data, 60);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the padding cut-off with GPT-J added tokens', () => {
  test('extract (tokenizer.json checkpoint) marks exactly the top-k ids >= 50257, and there are some', async () => {
    const out = path.join(tmp, 'extract-padding.json');
    const r = await cli(['extract', '--model', jsonModel, '--text', 'The cat sat on the mat by the door', '--positions', 'all', '--top-k', '100', '--json', out]);
    expect(r.code, r.stderr).toBe(0);
    const record = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(record.model.tokenizer_vocab_size).toBe(BASE_VOCAB);
    let marked = 0;
    for (const e of record.examples) {
      for (const l of e.layers) {
        expect(l.padding_ids).toEqual(l.top_k.ids.filter((id: number) => id >= BASE_VOCAB));
        marked += l.padding_ids.length;
      }
    }
    // With the old cut-off (50400, counting the added tokens) nothing would be marked.
    expect(marked).toBeGreaterThan(0);
  }, 120_000);
});

describe('device strings', () => {
  test('--devices cuda:01 is refused before any database or process, with the words of --device cuda:01', async () => {
    const fresh = path.join(tmp, 'never-created.sqlite');
    const base = ['sweep', '--model', filesModel, '--data', data, '--preset', 'logitscope', '--db', fresh];
    const one = await cli([...base, '--device', 'cuda:01']);
    const many = await cli([...base, '--devices', 'cpu,cuda:01']);
    expect(one.code).toBe(2);
    expect(many.code).toBe(2);
    const reason = (stderr: string) => /\[argument_invalid\] --devices?: (.*)/.exec(stderr)?.[1];
    expect(reason(one.stderr)).toMatch(/^unknown device "cuda:01": a device is cpu, cuda, cuda:N .* or webgpu$/);
    expect(reason(many.stderr)).toBe(reason(one.stderr));
    expect(many.stderr).toMatch(/^\[argument_invalid\] --devices: /m);
    expect(fs.existsSync(fresh)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.shards-'))).toEqual([]);
  }, 60_000);

  test('sweep.start refuses a devices entry the engine would refuse (cuda:01), in the words of model.load', async () => {
    const lab = await Lab.open({ dbPath: path.join(tmp, 'api-devices.sqlite') });
    try {
      const request = { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }], layers: [0], modelDir: filesModel };
      const shard = await lab.dispatch('sweep.start', { ...request, devices: ['cuda:0', 'cuda:01'] });
      expect(shard).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'devices.1' } });
      const load = await lab.dispatch('model.load', { dir: filesModel, device: 'cuda:01' });
      expect(load).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'device' } });
      const words = (r: unknown) => (r as { error: { message: string } }).error.message;
      expect(words(shard)).toBe(words(load));
      expect(words(load)).toMatch(/^a device is cpu, cuda, cuda:N .* or webgpu$/);
      // WebGPU shards are a kind of their own: accepted by the pattern, refused only when mixed.
      const mixed = await lab.dispatch('sweep.start', { ...request, devices: ['webgpu', 'cpu'] });
      expect(mixed).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'devices', message: expect.stringContaining('one kind (cpu, cuda or webgpu)') } });
    } finally {
      await lab.close();
    }
  });

  test('extract --demo reads a prompt with the built-in demo model, as sweep --demo sweeps with it', async () => {
    const r = await cli(['extract', '--demo', '--text', 'The capital of France is', '--top-k', '2', '--layers', '5', '--json', path.join(tmp, 'demo-extract.json')]);
    expect(r.code).toBe(0);
    const record = JSON.parse(fs.readFileSync(path.join(tmp, 'demo-extract.json'), 'utf8'));
    expect(record.model.path).toBe(DEMO.modelDir);
    expect(r.stdout).toMatch(/parity at layer 5: PASS/);
  }, 60_000);

  test('the help of extract and sweep names every device form', async () => {
    for (const command of ['extract', 'sweep']) {
      const r = await cli([command, '--help']);
      expect(r.stdout).not.toContain('cpu|cuda');
      expect(r.stdout).toMatch(/--device D\s+cpu \(default\), cuda \(= cuda:0\), cuda:N \(GPU N of the machine\) or webgpu/);
    }
  }, 60_000);
});

describe('doctor and WebGPU', () => {
  // Dawn needs the Vulkan loader to find any adapter; without it the check must say "not found".
  const hasVulkanLoader = (() => {
    try {
      return execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes('libvulkan.so.1');
    } catch {
      return false;
    }
  })();

  test('doctor says whether a WebGPU adapter is found, with the reason when not, and returns', async () => {
    const started = performance.now();
    const r = await cli(['doctor']);
    expect(r.code, r.stderr).toBe(0);
    expect((performance.now() - started) / 1000).toBeLessThan(40); // bounded by the probe's 20 s timeout
    const line = /^webgpu: (.*)$/m.exec(r.stdout)?.[1];
    expect(line).toBeDefined();
    if (hasVulkanLoader) {
      expect(line).toMatch(/^(a WebGPU adapter is found and a session starts: run with --device webgpu|no WebGPU adapter found: .+)$/);
    } else {
      expect(line).toMatch(/^no WebGPU adapter found: Failed to get a WebGPU adapter: No supported adapters/);
    }
  }, 60_000);

  test('a probe that does not answer in time is reported as such instead of hanging', async () => {
    const started = performance.now();
    const answer = await probeWebGpu(30); // far less than a child process needs to start
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(answer).toEqual({ ok: false, reason: 'no answer from the WebGPU provider within 0.03 s (the adapter request hung)' });
  });
});

describe('tuned-lens settings from the command line', () => {
  const sweepArgs = ['sweep', '--model', filesModel, '--data', data, '--preset', 'logitscope', '--pool-end', '10', '--limit', '4'];

  test('bad values, or lens options without tuned_lens, are refused before any work', async () => {
    const fresh = path.join(tmp, 'lens-never-created.sqlite');
    const withLens = [...sweepArgs, '--db', fresh, '--techniques', 'logit_lens,tuned_lens'];
    const cases: [string[], RegExp][] = [
      [[...withLens, '--lens-ridge', '0'], /\[argument_invalid\] --lens-ridge[: ].*between 0 and 1.*"0"/],
      [[...withLens, '--lens-ridge', '1'], /\[argument_invalid\] --lens-ridge[: ].*"1"/],
      [[...withLens, '--lens-ridge', 'small'], /\[argument_invalid\] --lens-ridge[: ].*"small"/],
      [[...withLens, '--lens-train', '5-5'], /\[argument_invalid\] --lens-train[: ].*at least 2 items/],
      [[...withLens, '--lens-train', '9-3'], /\[argument_invalid\] --lens-train[: ].*at least 2 items/],
      [[...withLens, '--lens-train', 'first-100'], /\[argument_invalid\] --lens-train[: ].*range of items such as 0-9999/],
      [[...withLens, '--lens-seed', '-1'], /\[argument_invalid\] --lens-seed[: ].*whole number ≥ 0/],
      [[...sweepArgs, '--db', fresh, '--lens-ridge', '1e-3'], /\[argument_invalid\] --lens-ridge[: ].*add tuned_lens to --techniques/],
      [[...sweepArgs, '--db', fresh, '--techniques', 'logit_lens', '--lens-seed', '2', '--lens-train', '0-9'], /\[argument_invalid\] --lens-train[: ].*add tuned_lens.*drop --lens-train, --lens-seed/],
      [['extract', '--model', filesModel, '--db', fresh, '--text', 'hi', '--techniques', 'tuned_lens', '--lens-ridge', '1e-3'], /\[argument_invalid\] --lens-ridge: extract .*fits none.*logitscope sweep --techniques tuned_lens/],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(pattern);
    }
    expect(fs.existsSync(fresh)).toBe(false);
  }, 120_000);

  test('a sweep with --lens-train/--lens-ridge/--lens-seed records them: runs show, the exports, and the parity line', async () => {
    const json = path.join(tmp, 'lens-sweep.json');
    const r = await cli([...sweepArgs, '--techniques', 'logit_lens,tuned_lens', '--lens-train', '0-19', '--lens-ridge', '0.001', '--lens-seed', '3', '--name', 'lens flags', '--json', json]);
    expect(r.code, r.stderr).toBe(0);
    const record = JSON.parse(fs.readFileSync(json, 'utf8'));
    const lens = record.techniques.tuned_lens.lens;
    expect(lens).toMatchObject({ ridge: 0.001, positionSeed: 3, train: { start: 0, end: 20 }, examples: 18 }); // 20 less every tenth, held out for the lens's check
    const runId: string = record.run.id;

    const shown = await cli(['runs', 'show', runId]);
    expect(shown.code, shown.stderr).toBe(0);
    const lensLine = /^tuned_lens: (.*)$/m.exec(shown.stdout)?.[1];
    expect(lensLine).toBe(lens.description);
    expect(lensLine).toMatch(new RegExp(`^affine tuned lens ${lens.key.slice(0, 12)}: fitted on items 0\\.\\.19 of records 10\\.\\..*, position seed 3, ridge 0\\.001·tr\\(Σ\\)/d`));

    // The sweep's own output ends with the parity line `runs show` prints for the run.
    const parity = shown.stdout.split('\n').filter((l) => l.startsWith('parity at layer '));
    expect(parity).toHaveLength(1);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('parity at layer '))).toEqual(parity);
    expect(parity[0]).toMatch(/^parity at layer 2: (PASS|FAIL|N\/A)/);

    // CSV and Parquet: technique_detail names the lens on tuned_lens rows, empty elsewhere.
    const csv = path.join(tmp, 'lens-sweep.csv');
    const parquet = path.join(tmp, 'lens-sweep.parquet');
    for (const out of [csv, parquet]) expect((await cli(['runs', 'export', runId, '--out', out])).code).toBe(0);
    const buf = fs.readFileSync(parquet);
    const rows = await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) });
    expect(rows.length).toBe(4 * 2 * 3);
    for (const row of rows) expect(row.technique_detail).toBe(row.technique === 'tuned_lens' ? lens.description : '');
    // The description holds commas, so its field is quoted.
    const [columns, ...lines] = parseCsv(fs.readFileSync(csv, 'utf8'));
    expect(columns).toContain('technique_detail');
    expect(lines).toHaveLength(rows.length);
    for (const fields of lines) {
      const technique = fields[columns.indexOf('technique')];
      expect(fields[columns.indexOf('technique_detail')]).toBe(technique === 'tuned_lens' ? lens.description : '');
    }
  }, 240_000);
});
