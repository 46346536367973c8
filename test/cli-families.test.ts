/**
 * Every technique on every family, through the real command line (a child process per command, real
 * onnxruntime sessions) on the tiny family checkpoints (test/fixtures/hf-families.ts): a sweep and an
 * extraction each, with the family's own tokenizer, BOS and target prompts, recorded in the exports.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadTokenizer } from '../src-main/engine/tokenizer.ts';
import { TOKEN_IDENTITY_PROMPT } from '../src-main/protocol/techniques.ts';
import { runCli } from './fixtures/cli.ts';
import { writeTinyFamily, type Family } from './fixtures/hf-families.ts';
import { writeTopicRecords } from './fixtures/records.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-families-'));
const env = { ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'cache'), LOGITSCOPE_DB: path.join(tmp, 'results.sqlite') };
const cli = (args: string[]) => runCli(args, env, { cwd: tmp });
const data = path.join(tmp, 'lines.jsonl');

/** Pythia's head is padded past its tokenizer (50304 rows for 50277 ids); the tiny one gets 14 padding rows the same way. */
const PADDING_ROWS = 14;
const FAMILIES: Family[] = ['llama', 'mistral', 'qwen2', 'gemma2', 'gpt_neox', 'gpt2'];
const dirs = new Map<Family, string>();

beforeAll(() => {
  writeTopicRecords(data, 20);
  for (const family of FAMILIES) {
    const dir = path.join(tmp, family);
    const tokenizerOnly = path.join(tmp, `${family}-tokenizer`);
    const vocab = family === 'gpt_neox' ? writeTinyFamily({ dir: tokenizerOnly, family, seed: 1 }).config.vocab_size as number : 0;
    writeTinyFamily({ dir, family, seed: 7, ...(family === 'gpt_neox' && { overrides: { vocab_size: vocab + PADDING_ROWS } }) });
    dirs.set(family, dir);
  }
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('doctor --model says the family, the parameter count and the memory plan per device kind', async () => {
  const dir = dirs.get('mistral')!;
  const r = await cli(['doctor', '--model', dir]);
  expect(r.code, r.stderr).toBe(0);
  const parameters = Number(/^model .*: llama \(model_type mistral\), \S+ parameters \((\d+)\)$/m.exec(r.stdout)?.[1]);
  expect(parameters).toBeGreaterThan(0);
  expect(r.stdout).toMatch(new RegExp(`^memory on cpu: float32: .* weights \\+ at most 2\\.0 GiB working set`, 'm'));
  expect(r.stdout).toMatch(/^memory on cuda: float16: /m);
}, 120_000);

describe.each(FAMILIES)('%s', (family) => {
  test('a sweep runs the logit lens, token identity, the logitscope and a custom patchscope with the family’s BOS and prompts, and records the family', async () => {
    const dir = dirs.get(family)!;
    const tok = loadTokenizer(dir);
    const json = path.join(tmp, `${family}-sweep.json`);
    const r = await cli(['sweep', '--model', dir, '--data', data, '--preset', 'patchscopes', '--pool-end', '20', '--eval-start', '0', '--limit', '4', '--prompt', 'the cat ->', '--json', json]);
    expect(r.code, r.stderr).toBe(0);
    const record = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(record.model).toMatchObject({ family: family === 'mistral' || family === 'qwen2' ? 'llama' : family, model_type: family, tokenizer_style: tok.style, bos_token: tok.bos });
    const bos = tok.bos ? [tok.bos.id] : [];
    expect(record.techniques.patchscope.prompt_tokens).toEqual([...bos, ...tok.encode(TOKEN_IDENTITY_PROMPT)]);
    expect(record.techniques.logitscope.prompt_tokens).toEqual([...bos, tok.tokenFor('?')]);
    expect(record.techniques.custom_1.prompt_tokens).toEqual([...bos, ...tok.encode('the cat ->')]);
    expect(record.examples.length).toBe(4);
    for (const e of record.examples) {
      // The patchscopes preset asks for no BOS: where the tokenizer adds one it is there, and never the sampled position.
      if (tok.bos) expect([e.tokens[0], e.position > 0]).toEqual([tok.bos.id, true]);
      else expect(e.tokens[0]).not.toBe(tok.bos);
      expect(e.layers.map((l: { technique: string }) => l.technique).sort()).toEqual(expect.arrayContaining(['custom_1', 'logit_lens', 'logitscope', 'patchscope']));
    }
  }, 300_000);

  test('an extraction at every position marks the head’s padding rows by the tokenizer’s size', async () => {
    const dir = dirs.get(family)!;
    const tok = loadTokenizer(dir);
    const json = path.join(tmp, `${family}-extract.json`);
    const r = await cli(['extract', '--model', dir, '--text', 'the cat sat on the mat', '--positions', 'all', '--top-k', '40', '--json', json]);
    expect(r.code, r.stderr).toBe(0);
    const record = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(record.model.tokenizer_vocab_size).toBe(tok.vocabSize);
    expect(record.model.config.dVocab).toBe(tok.vocabSize + (family === 'gpt_neox' ? PADDING_ROWS : 0));
    for (const e of record.examples) {
      for (const l of e.layers) expect(l.padding_ids).toEqual(l.top_k.ids.filter((id: number) => id >= tok.vocabSize));
    }
    expect(r.stdout).toContain(tok.tokenString(tok.encode(' cat').at(-1)!).trim());
  }, 300_000);
});
