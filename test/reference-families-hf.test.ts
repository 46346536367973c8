/**
 * The families' float64 reference checked against Hugging Face transformers itself: each tiny
 * checkpoint writeTinyFamily writes is loaded by AutoModelForCausalLM (scripts/hf-reference.py,
 * float64, eager attention) and every layer's output and the logits are compared. Also checks that
 * HF finds every weight under the key name we write, and that the tokenizer files give the same
 * ids in @huggingface/tokenizers (what the app uses), in Python's `tokenizers` and in AutoTokenizer.
 *
 * Optional: needs LOGITSCOPE_HF_PYTHON, a python with torch + transformers (docs: /work/shared/
 * ENVIRONMENT.md, "Hugging Face's own code as a reference"). CI has none and skips.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { writeTinyFamily, type TinyFamilyOptions } from './fixtures/hf-families.ts';
import { referenceForward, type ReferenceResult } from './reference/families-f64.ts';

const python = process.env.LOGITSCOPE_HF_PYTHON;
const skipReason = !python
  ? 'LOGITSCOPE_HF_PYTHON is not set'
  : !fs.existsSync(python)
    ? `LOGITSCOPE_HF_PYTHON=${python} does not exist`
    : undefined;

/**
 * HF's float64 run is not all float64: RMSNorm runs in float32, rotary cos/sin are float32, attention
 * softmax is float32. Measured differences are ≤ 4e-6 on values up to ~15, so 2e-5 absolute. GPT-2
 * has none of these and agrees to ~1e-14.
 */
const TOLERANCE = 2e-5;
const GPT2_TOLERANCE = 1e-11;

interface Case {
  name: string;
  fixture: Omit<TinyFamilyOptions, 'dir'>;
}

const CASES: Case[] = [
  { name: 'Llama (GQA, llama3 rope scaling, untied)', fixture: { family: 'llama', seed: 11 } },
  {
    name: 'Llama with attention and MLP biases, plain RoPE, tied head, bf16 weights',
    fixture: { family: 'llama', seed: 12, dtype: 'BF16', overrides: { attention_bias: true, mlp_bias: true, rope_scaling: null, tie_word_embeddings: true } },
  },
  { name: 'Mistral (head_dim 32 ≠ 64/4, sliding window 4)', fixture: { family: 'mistral', seed: 13 } },
  { name: 'Mistral without head_dim or sliding window', fixture: { family: 'mistral', seed: 14, overrides: { head_dim: undefined, sliding_window: null } } },
  { name: 'Qwen2 (q/k/v biases, tied head)', fixture: { family: 'qwen2', seed: 15 } },
  {
    name: 'Qwen2 sliding from layer 1, untied, fp16 weights',
    fixture: { family: 'qwen2', seed: 16, dtype: 'F16', overrides: { use_sliding_window: true, sliding_window: 3, max_window_layers: 1, tie_word_embeddings: false } },
  },
  { name: 'Gemma 2 (soft-caps, alternating sliding layers, pre/post norms)', fixture: { family: 'gemma2', seed: 17 } },
  { name: 'Gemma 2 with HF defaults for head_dim and query_pre_attn_scalar (256)', fixture: { family: 'gemma2', seed: 18, layers: 2, overrides: { head_dim: undefined, query_pre_attn_scalar: undefined } } },
  { name: 'GPT-NeoX (parallel residual, rotary_pct 0.25)', fixture: { family: 'gpt_neox', seed: 19 } },
  { name: 'GPT-NeoX sequential residual, rotary_pct 0.5, base 500', fixture: { family: 'gpt_neox', seed: 20, overrides: { use_parallel_residual: false, rotary_pct: 0.5, rotary_emb_base: 500 } } },
  { name: 'GPT-2 (learned positions, Conv1D, tied head)', fixture: { family: 'gpt2', seed: 21 } },
];

const TEXTS = ['Hello the world, and in café 42!', ' leading space and  two', "it's naïve: 日本 🙂\nnew line"];

interface HfResult {
  architecture: string;
  missing_keys: string[];
  unexpected_keys: string[];
  mismatched_keys: string[];
  embeddings: number[][];
  resid_post: number[][][];
  logits: number[][];
  encodings: Record<string, { tokenizers: number[]; auto: number[]; decoded: string }>;
}

function maxAbsDiff(ours: ArrayLike<number>[], theirs: number[][]): number {
  let max = 0;
  ours.forEach((row, i) => Array.from(row).forEach((v, j) => (max = Math.max(max, Math.abs(v - theirs[i][j])))));
  return max;
}

describe.skipIf(skipReason !== undefined)(`the families' float64 reference against Hugging Face transformers${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'families-hf-'));
  const models = CASES.map((c, i) => writeTinyFamily({ dir: path.join(tmp, String(i)), ...c.fixture }));
  // A dozen tokens spread over the vocabulary (byte tokens, pieces, specials), long enough for windows of 3 and 4 to slide.
  const tokensFor = (vocab: number) => [2, 40, 7, 100, 260, 3, 9, 280, 12, 33, 150, 71].map((t) => t % vocab);
  let hf: HfResult[] | undefined;
  const results = (): HfResult[] => {
    if (hf) return hf;
    const request = { cases: models.map((m) => ({ dir: m.dir, tokens: tokensFor(m.config.vocab_size as number), texts: TEXTS })) };
    const run = spawnSync(python!, [path.resolve('scripts/hf-reference.py')], { input: JSON.stringify(request), encoding: 'utf8', maxBuffer: 1 << 30 });
    if (run.status !== 0) throw new Error(`hf-reference.py failed (${run.status}):\n${run.stderr}`);
    hf = (JSON.parse(run.stdout) as { results: HfResult[] }).results;
    return hf;
  };
  const measured: string[] = [];

  CASES.forEach((c, i) => {
    it(`${c.name}: HF loads every weight by its key, and each layer's output and the logits match within ${TOLERANCE}`, () => {
      const m = models[i];
      const theirs = results()[i];
      expect(theirs.architecture).toBe((m.config.architectures as string[])[0]);
      expect({ missing: theirs.missing_keys, mismatched: theirs.mismatched_keys }).toEqual({ missing: [], mismatched: [] });
      const ours: ReferenceResult = referenceForward({ family: m.family, config: m.config, weights: m.tensors, tokens: tokensFor(m.config.vocab_size as number) });
      const tol = m.family === 'gpt2' ? GPT2_TOLERANCE : TOLERANCE;
      const diffs = {
        embeddings: maxAbsDiff(ours.embeddings, theirs.embeddings),
        residPost: Math.max(...ours.residPost.map((layer, l) => maxAbsDiff(layer, theirs.resid_post[l]))),
        logits: maxAbsDiff(ours.logits, theirs.logits),
      };
      measured.push(`${c.name}: max |Δ| resid_post ${diffs.residPost.toExponential(1)}, logits ${diffs.logits.toExponential(1)}`);
      expect(diffs.embeddings).toBeLessThanOrEqual(tol);
      expect(diffs.residPost).toBeLessThanOrEqual(tol);
      expect(diffs.logits).toBeLessThanOrEqual(tol);
    });

    it(`${c.name}: the tokenizer gives the same ids in @huggingface/tokenizers, Python's tokenizers and AutoTokenizer, and decodes alike`, () => {
      const m = models[i];
      const read = (name: string) => JSON.parse(fs.readFileSync(path.join(m.dir, name), 'utf8'));
      const tokenizer = new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
      for (const text of TEXTS) {
        const ids = tokenizer.encode(text).ids;
        expect({ text, ids }).toEqual({ text, ids: results()[i].encodings[text].tokenizers });
        expect({ text, ids }).toEqual({ text, ids: results()[i].encodings[text].auto });
        expect({ text, decoded: tokenizer.decode(ids, { skip_special_tokens: true }) }).toEqual({ text, decoded: results()[i].encodings[text].decoded });
        expect(Math.max(...ids)).toBeLessThan(m.config.vocab_size as number);
      }
    });
  });

  it('prints the measured differences', () => {
    console.log(measured.join('\n'));
    expect(measured.length).toBe(CASES.length);
  });
});
