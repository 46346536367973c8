/**
 * BOS, the sampled positions and the built-in target prompts on each family's own tokenizer
 * (test/fixtures/family-tokenizers.ts), against ids read from the tokenizer files themselves.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode as gptEncode } from 'gpt-3-encoder';
import { bosPlan, promptTokenizer } from '../src-main/engine/bos.ts';
import { loadTokenizer } from '../src-main/engine/tokenizer.ts';
import { buildExamples } from '../src-main/data/selection.ts';
import { PRESETS } from '../src-main/protocol/presets.ts';
import { BUILT_IN_TECHNIQUES, LOGITSCOPE, resolveTechniques, TOKEN_IDENTITY, TOKEN_IDENTITY_PROMPT } from '../src-main/protocol/techniques.ts';
import type { Family } from './reference/families-config.ts';
import { writeTinyGptjTokenizer } from './fixtures/checkpoint-writer.ts';
import { writeFamilyTokenizer } from './fixtures/family-tokenizers.ts';
import { editJson, pieceId } from './fixtures/tokenizer-edits.ts';

const SP = '\u2581';
let root: string;
let n = 0;
function written(family: Family | 'gptj'): string {
  const dir = path.join(root, `${family}-${n++}`);
  fs.mkdirSync(dir);
  if (family === 'gptj') writeTinyGptjTokenizer(dir, 'tokenizer.json');
  else writeFamilyTokenizer(dir, family);
  return dir;
}
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'family-prompts-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A config bos_token_id where the family's tokenizer adds none (GPT-J's <|endoftext|>); unused where it adds its own. */
const CONFIG_BOS = 50256;
const BOS_TEXT: Partial<Record<Family, string>> = { llama: '<s>', mistral: '<s>', gemma2: '<bos>' };
const FAMILIES = ['gptj', 'gpt2', 'gpt_neox', 'qwen2', 'llama', 'mistral', 'gemma2'] as const;

describe('where BOS goes', () => {
  it.each(['gptj', 'gpt2', 'gpt_neox', 'qwen2'] as const)('%s adds the config’s BOS only where the protocol asks (the logitscope preset), and it may be drawn', (family) => {
    const tok = loadTokenizer(written(family));
    expect(bosPlan(tok, CONFIG_BOS, PRESETS.logitscope.bos)).toEqual({ id: CONFIG_BOS, drawn: true });
    expect(bosPlan(tok, CONFIG_BOS, PRESETS.patchscopes.bos)).toEqual({ id: null, drawn: false });
  });

  it.each(['llama', 'mistral', 'gemma2'] as const)("%s always starts with its tokenizer's BOS; only the logitscope preset may draw it", (family) => {
    const dir = written(family);
    const tok = loadTokenizer(dir);
    const bos = pieceId(dir, BOS_TEXT[family]!);
    expect(bosPlan(tok, CONFIG_BOS, PRESETS.logitscope.bos)).toEqual({ id: bos, drawn: true });
    expect(bosPlan(tok, CONFIG_BOS, PRESETS.patchscopes.bos)).toEqual({ id: bos, drawn: false });
  });

  it('a BOS only the tokenizer put there is never the sampled position, and positions still cover the text', () => {
    const dir = written('llama');
    const tok = loadTokenizer(dir);
    const records = Array.from({ length: 300 }, (_, index) => ({ text: 'the cat', file: 'x.jsonl', index }));
    const { examples } = buildExamples(records, { tokenize: (t) => tok.encode(t), bos: bosPlan(tok, CONFIG_BOS, false), nCtx: 64, positionSeed: 0 });
    const [bos, the] = [pieceId(dir, '<s>'), pieceId(dir, `${SP}the`)];
    expect(examples[0].tokens.slice(0, 2)).toEqual([bos, the]);
    const length = examples[0].tokens.length;
    expect(new Set(examples.map((e) => e.position))).toEqual(new Set(Array.from({ length: length - 1 }, (_, i) => i + 1)));
  });

  it('a BOS the protocol asked for can be the sampled position, as in the seed', () => {
    const tok = loadTokenizer(written('gptj'));
    const records = Array.from({ length: 300 }, (_, index) => ({ text: 'Hello world', file: 'x.jsonl', index }));
    const { examples } = buildExamples(records, { tokenize: (t) => tok.encode(t), bos: bosPlan(tok, CONFIG_BOS, true), nCtx: 64, positionSeed: 0 });
    expect(examples[0].tokens).toEqual([CONFIG_BOS, ...gptEncode('Hello world')]);
    expect(new Set(examples.map((e) => e.position))).toEqual(new Set([0, 1, 2]));
  });
});

describe("the built-in target prompts on each family's tokenizer", () => {
  it.each(FAMILIES)('%s: the identity prompt ends in its own "?" token and the logitscope is the one token for "?", BOS in front where the family adds one', (family) => {
    const dir = written(family);
    const tok = loadTokenizer(dir);
    const bos = tok.bos ? [tok.bos.id] : [];
    const [, identity, logitscope] = resolveTechniques(BUILT_IN_TECHNIQUES, promptTokenizer(tok, bosPlan(tok, CONFIG_BOS, false))) as { promptTokens: number[] }[];
    // The tiny SentencePiece vocabularies have no piece "?": it is the byte-fallback token <0x3F>, as a vocabulary without "?" would have it.
    const question = pieceId(dir, tok.style === 'byte-level' ? '?' : '<0x3F>');
    expect(identity.promptTokens).toEqual([...bos, ...tok.encode(TOKEN_IDENTITY_PROMPT)]);
    expect(identity.promptTokens.at(-1)).toBe(question);
    expect(logitscope.promptTokens).toEqual([...bos, question]);
    if (family === 'gptj') expect(identity.promptTokens).toEqual(gptEncode(TOKEN_IDENTITY_PROMPT));
  });

  it('the logitscope takes the piece "?" itself where the vocabulary has one, never "▁?" with a prepended space', () => {
    const dir = written('llama');
    editJson(dir, 'tokenizer.json', (j) => {
      const next = Math.max(...Object.values(j.model.vocab)) + 1;
      Object.assign(j.model.vocab, { '?': next, [`${SP}?`]: next + 1 });
      j.model.merges.push(`${SP} ?`);
    });
    const tok = loadTokenizer(dir);
    expect(tok.encode('?')).toEqual([pieceId(dir, `${SP}?`)]);
    const [logitscope] = resolveTechniques([LOGITSCOPE], promptTokenizer(tok, bosPlan(tok, CONFIG_BOS, false))) as { promptTokens: number[] }[];
    expect(logitscope.promptTokens).toEqual([pieceId(dir, '<s>'), pieceId(dir, '?')]);
  });

  it('refuses the logitscope with prompt_unsuitable, before any work, where no one token stands for "?"', () => {
    const dir = written('llama');
    editJson(dir, 'tokenizer.json', (j) => {
      j.model.byte_fallback = false;
      delete j.model.vocab['<0x3F>'];
    });
    const tok = loadTokenizer(dir);
    expect(() => resolveTechniques([LOGITSCOPE], promptTokenizer(tok, bosPlan(tok, CONFIG_BOS, false)))).toThrow(
      expect.objectContaining({ code: 'prompt_unsuitable', path: 'logitscope', message: expect.stringContaining('has no such token') }),
    );
  });

  it('refuses the token-identity prompt where the tokenizer merges its "?" into the line break before it', () => {
    const dir = written('llama');
    editJson(dir, 'tokenizer.json', (j) => {
      const next = Math.max(...Object.values(j.model.vocab)) + 1;
      Object.assign(j.model.vocab, { '\n': next, '?': next + 1, '\n?': next + 2 });
      j.model.merges.push('\n ?');
    });
    const tok = loadTokenizer(dir);
    expect(() => resolveTechniques([TOKEN_IDENTITY], promptTokenizer(tok, bosPlan(tok, CONFIG_BOS, false)))).toThrow(
      expect.objectContaining({ code: 'prompt_unsuitable', path: 'patchscope', message: expect.stringContaining('\\n?') }),
    );
  });
});
