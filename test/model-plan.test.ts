/** The parameter count and device-memory plan doctor and the model panel show, against the tensors the tiny family writers wrote. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatBytes, formatParameters } from '../src-main/api/format.ts';
import { readModelConfig } from '../src-main/engine/config.ts';
import { memoryPlan, parameterCount, WORKING_SET_BYTES } from '../src-main/engine/model-plan.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { FAMILIES, writeTinyFamily } from './fixtures/hf-families.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'model-plan-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the parameter count', () => {
  it.each(FAMILIES)('%s: every weight the checkpoint holds, counted once', (family) => {
    const tiny = writeTinyFamily({ dir: path.join(tmp, family), family, seed: 3 });
    let written = 0;
    for (const values of tiny.tensors.values()) written += values.length;
    expect(parameterCount(readModelConfig(tiny.dir))).toBe(written);
  });

  it('counts a tied head once (GPT-2 style tie_word_embeddings)', () => {
    const tied = writeTinyFamily({ dir: path.join(tmp, 'llama-tied'), family: 'llama', seed: 3, overrides: { tie_word_embeddings: true } });
    let written = 0;
    for (const values of tied.tensors.values()) written += values.length;
    expect(parameterCount(readModelConfig(tied.dir))).toBe(written);
  });

  it('is GPT-J 6B’s 6,050,882,784 for its published config', () => {
    const dir = path.join(tmp, 'gptj-6b-config');
    writeTinyGptj({ dir, format: 'safetensors', seed: 1, tokenizer: 'none' });
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    Object.assign(config, { n_layer: 28, n_embd: 4096, n_head: 16, rotary_dim: 64, n_positions: 2048, vocab_size: 50400, n_inner: null });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    // Per block: ln_1 (w, b), q/k/v/out 4096², fc_in 16384×4096 + b, fc_out 4096×16384 + b; then wte, ln_f, lm_head with its bias.
    const block = 2 * 4096 + 4 * 4096 ** 2 + (16384 * 4096 + 16384) + (4096 * 16384 + 4096);
    const expected = 28 * block + 50400 * 4096 + 2 * 4096 + (50400 * 4096 + 50400);
    expect(expected).toBe(6_050_882_784);
    expect(parameterCount(readModelConfig(dir))).toBe(expected);
    expect(formatParameters(expected)).toBe('6.05B');
  });
});

describe('the device-memory plan', () => {
  it('holds the weights in the compute dtype plus the capped working set', () => {
    const tiny = writeTinyFamily({ dir: path.join(tmp, 'gemma2-plan'), family: 'gemma2', seed: 3 });
    const c = readModelConfig(tiny.dir);
    const n = parameterCount(c);
    expect(memoryPlan(c, 'float32')).toEqual({ dtype: 'float32', weightBytes: 4 * n, workingBytes: WORKING_SET_BYTES, totalBytes: 4 * n + WORKING_SET_BYTES });
    expect(memoryPlan(c, 'float16').weightBytes).toBe(2 * n);
    expect(formatBytes(WORKING_SET_BYTES)).toBe('2.0 GiB');
  });
});
