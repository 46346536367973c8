import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, test } from 'vitest';
import { cudaProviderInstalled } from '../src-main/engine/cuda-provider.ts';
import { addUnmeasuredRun } from './e2e/unmeasured-run.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { summaryBlock } from './fixtures/summary-table-cells.ts';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
const bin = path.resolve('bin/logitscope.js');
const env = { ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'cache'), LOGITSCOPE_DB: path.join(tmp, 'results.sqlite') };

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { env, cwd: tmp });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('the logitscope command line', () => {
  const model = path.join(tmp, 'model');
  beforeAll(() => {
    writeTinyGptj({ dir: model, format: 'bin', seed: 21 });
    const lines = ['The cat sat on the mat.', 'Water boils at one hundred degrees.', '', '{not json', 'A third line of text here.'];
    fs.writeFileSync(path.join(tmp, 'data.jsonl'), lines.map((t) => (t.startsWith('{') ? t : JSON.stringify({ text: t }))).join('\n'));
  });

  test('extract prints every layer for each technique and writes the export record', async () => {
    const out = path.join(tmp, 'extract.json');
    const r = await cli(['extract', '--model', model, '--text', 'The cat sat on the', '--bos', '--top-k', '3', '--json', out]);
    expect(r.code).toBe(0);
    for (let l = 0; l < 3; l++) expect(r.stdout).toMatch(new RegExp(`layer\\s+${l}\\s+logit_lens`));
    const record = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(Object.keys(record.techniques)).toEqual(['logit_lens', 'patchscope', 'logitscope']);
    expect(record.techniques.logitscope).toEqual({ prompt: '?', prompt_tokens: [50256, 30], target_layer: 'same' });
    const [ex] = record.examples;
    expect(ex.tokens[0]).toBe(50256);
    expect(ex.position).toBe(ex.tokens.length - 1);
    expect(ex.layers).toHaveLength(9);
    expect(Object.keys(ex.layers[0]).sort()).toEqual(['entropy', 'hook', 'kl', 'layer', 'padding_ids', 'rank', 'surprisal', 'surprisal_paper', 'technique', 'top1', 'top_k']);
    // At the last layer every technique reads the model's own output.
    for (const row of ex.layers.filter((x: { layer: number }) => x.layer === 2)) expect(row.top1).toBe(ex.reference_top1);
  });

  test('sweep writes the export record with per-layer summaries and skip counts', async () => {
    const out = path.join(tmp, 'sweep.json');
    const r = await cli(['sweep', '--model', model, '--data', path.join(tmp, 'data.jsonl'), '--preset', 'logitscope', '--layers', '0-2', '--json', out]);
    expect(r.code).toBe(0);
    const record = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(record.status).toBe('completed');
    expect(record.examples).toHaveLength(3);
    expect(record.dataset.pool.skipped.malformedJson).toBe(1);
    expect(record.dataset.files).toEqual([path.join(tmp, 'data.jsonl')]);
    expect(record.summary.rows).toHaveLength(9);
    expect(record.examples[0].layers[0].top_k.ids).toHaveLength(10);
    expect(record.protocol).toMatchObject({ preset: 'logitscope', bos: true, filter: { maxWords: 200, maxChars: 1600 } });
    // The console table shows the same means as the export, each under its technique at its layer.
    const precision = summaryBlock(r.stdout, 'precision@1 / surprisal');
    const measures = summaryBlock(r.stdout, 'KL(p_model ‖ p_technique) / entropy');
    expect(measures.lines).toHaveLength(2 + 3);
    for (const s of record.summary.rows) {
      expect(precision.cell(s.technique, s.layer)).toBe(`${s.precision_at_1.mean.toFixed(3)} / ${s.surprisal.mean.toFixed(2)}`);
      expect(measures.cell(s.technique, s.layer)).toBe(`${s.kl.mean.toFixed(3)} / ${s.entropy.mean.toFixed(2)}`);
      expect(s.n_measured).toBe(3);
    }
    // At the last layer the logit lens reads the model's own distribution: KL 0 up to fp32 rounding.
    expect(measures.cell('logit_lens', 2)).toMatch(/^-?0\.000 \//);
  });

  test('runs show of a run stored before the measures existed says they are not measured, with no numbers for them', async () => {
    const runId = addUnmeasuredRun(env.LOGITSCOPE_DB, { name: 'older', modelPath: model, modelKey: 'older-model' });
    const r = await cli(['runs', 'show', runId]);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryBlock(r.stdout, 'precision@1 / surprisal').cell('logit_lens', 2)).toBe('1.000 / 1.00');
    expect(r.stdout).toMatch(/^KL \/ entropy: not measured /m);
    expect(r.stdout).not.toContain('KL(p_model');
  });

  test('doctor says the CPU provider starts and what CUDA needs on a machine without it', async () => {
    const r = await cli(['doctor']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^cpu:\s+starts$/m);
    // Where the provider is installed (a GPU workstation) the line reports whether it starts instead.
    expect(r.stdout).toMatch(cudaProviderInstalled() ? /^cuda: /m : /^cuda: .*ONNXRUNTIME_NODE_INSTALL=cuda12/m);
    expect(r.stdout).toContain(path.join(tmp, 'results.sqlite'));
  });

  test('mistakes get a coded one-line error and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['extract', '--model', tmp, '--text', 'x'], /\[config_missing\].*config\.json/],
      [['extract', '--model', model, '--text', 'hello', '--position', '7'], /\[position_out_of_range\]/],
      [['extract', '--model', model, '--text', 'word '.repeat(200)], /\[prompt_too_long\]/],
      [['sweep', '--model', model, '--data', 'nope.jsonl', '--preset', 'logitscope', '--json', 'x.json'], /\[dataset_missing\]/],
      [['sweep', '--model', model, '--data', 'x.jsonl', '--preset', 'paper', '--json', 'x.json'], /\[argument_invalid\].*preset/],
      [['sweep', '--model', model, '--data', 'x.jsonl', '--preset', 'logitscope', '--json', 'x.json', '--layers', '3-1'], /backwards/],
      [['frobnicate'], /unknown command/],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(pattern);
    }
  });
});
