import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode as gptEncode } from 'gpt-3-encoder';
import { bosPlan, promptTokenizer } from '../src-main/engine/bos.ts';
import { loadTokenizer, type Tokenizer } from '../src-main/engine/tokenizer.ts';
import { buildExamples, PRESETS } from '../src-main/sweep/protocol.ts';
import { BUILT_IN_TECHNIQUES, resolveTechniques, TOKEN_IDENTITY_PROMPT } from '../src-main/sweep/techniques.ts';
import { writeTinyGptjTokenizer } from './fixtures/checkpoint-writer.ts';
import { pieceId, SP, writeSpTokenizer } from './fixtures/sp-tokenizer.ts';

let root: string;
const tokenizers: Record<'gptj' | 'llama' | 'gemma', { tok: Tokenizer; json?: Record<string, unknown> }> = {} as never;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'family-prompts-'));
  writeTinyGptjTokenizer(path.join(root, 'gptj'), 'tokenizer.json');
  tokenizers.gptj = { tok: loadTokenizer(path.join(root, 'gptj')) };
  const llama = writeSpTokenizer(path.join(root, 'llama'), { prependSpace: true, bos: 'template' });
  tokenizers.llama = { tok: loadTokenizer(path.join(root, 'llama')), json: llama };
  const gemma = writeSpTokenizer(path.join(root, 'gemma'), { prependSpace: false, bos: 'config' });
  tokenizers.gemma = { tok: loadTokenizer(path.join(root, 'gemma')), json: gemma };
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const ENDOFTEXT = 50256;

describe('where BOS goes', () => {
  it("GPT-J adds <|endoftext|> only where the protocol asks (the logitscope preset), and it may be drawn", () => {
    const { tok } = tokenizers.gptj;
    expect(bosPlan(tok, ENDOFTEXT, PRESETS.logitscope.bos)).toEqual({ id: ENDOFTEXT, drawn: true });
    expect(bosPlan(tok, ENDOFTEXT, PRESETS.patchscopes.bos)).toEqual({ id: null, drawn: false });
  });

  it("Llama and Gemma always start with their tokenizer's BOS; only the logitscope preset may draw it", () => {
    for (const family of ['llama', 'gemma'] as const) {
      const { tok, json } = tokenizers[family];
      const bos = pieceId(json!, family === 'llama' ? '<s>' : '<bos>');
      expect(bosPlan(tok, 999, PRESETS.logitscope.bos)).toEqual({ id: bos, drawn: true });
      expect(bosPlan(tok, 999, PRESETS.patchscopes.bos)).toEqual({ id: bos, drawn: false });
    }
  });

  it('a BOS only the tokenizer put there is never the sampled position, and positions still cover the text', () => {
    const { tok, json } = tokenizers.llama;
    const records = Array.from({ length: 300 }, (_, index) => ({ text: 'cat -> hello', file: 'x.jsonl', index }));
    const plan = bosPlan(tok, 1, false);
    const { examples } = buildExamples(records, { tokenize: (t) => tok.encode(t), bos: plan, nCtx: 64, positionSeed: 0 });
    expect(examples[0].tokens).toEqual(['<s>', `${SP}cat`, `${SP}->`, `${SP}hello`].map((p) => pieceId(json!, p)));
    expect(new Set(examples.map((e) => e.position))).toEqual(new Set([1, 2, 3]));
  });

  it('a BOS the protocol asked for can be the sampled position, as in the seed', () => {
    const { tok } = tokenizers.gptj;
    const records = Array.from({ length: 300 }, (_, index) => ({ text: 'Hello world', file: 'x.jsonl', index }));
    const { examples } = buildExamples(records, { tokenize: (t) => tok.encode(t), bos: bosPlan(tok, ENDOFTEXT, true), nCtx: 64, positionSeed: 0 });
    expect(examples[0].tokens).toEqual([ENDOFTEXT, ...gptEncode('Hello world')]);
    expect(new Set(examples.map((e) => e.position))).toEqual(new Set([0, 1, 2]));
  });
});

describe("the built-in target prompts on each family's tokenizer", () => {
  it('token identity ends in its own "?" token, BOS in front where the family adds one', () => {
    const gptj = resolveTechniques(BUILT_IN_TECHNIQUES, promptTokenizer(tokenizers.gptj.tok, bosPlan(tokenizers.gptj.tok, ENDOFTEXT, false)));
    expect(gptj.find((t) => t.id === 'patchscope')).toMatchObject({ promptTokens: gptEncode(TOKEN_IDENTITY_PROMPT) });
    expect(gptj.find((t) => t.id === 'logitscope')).toMatchObject({ promptTokens: gptEncode('?') });

    const { tok, json } = tokenizers.llama;
    const llama = resolveTechniques(BUILT_IN_TECHNIQUES, promptTokenizer(tok, bosPlan(tok, 1, false)));
    const identity = llama.find((t) => t.id === 'patchscope') as { promptTokens: number[] };
    expect(identity.promptTokens[0]).toBe(pieceId(json!, '<s>'));
    expect(identity.promptTokens.at(-1)).toBe(pieceId(json!, '?'));
    expect(identity.promptTokens.at(-2)).toBe(pieceId(json!, '<0x0A>'));
    // "?" with Llama's prepended space is the one piece "▁?".
    expect(llama.find((t) => t.id === 'logitscope')).toMatchObject({ promptTokens: [pieceId(json!, '<s>'), pieceId(json!, `${SP}?`)] });
  });

  it('Gemma spells "?" as the one piece "?" after its BOS', () => {
    const { tok, json } = tokenizers.gemma;
    const gemma = resolveTechniques(BUILT_IN_TECHNIQUES, promptTokenizer(tok, bosPlan(tok, 2, false)));
    expect(gemma.find((t) => t.id === 'logitscope')).toMatchObject({ promptTokens: [pieceId(json!, '<bos>'), pieceId(json!, '?')] });
  });

  it('refuses the logitscope with prompt_unsuitable, before any work, where "?" is not one token', () => {
    // A Llama-style vocabulary without the piece "▁?": "?" becomes "▁" + "?".
    const dir = path.join(root, 'no-question-piece');
    writeSpTokenizer(dir, { prependSpace: true, bos: 'template', words: [`${SP}cat`, '?'] });
    const tok = loadTokenizer(dir);
    expect(() => resolveTechniques(BUILT_IN_TECHNIQUES, promptTokenizer(tok, bosPlan(tok, 1, false)))).toThrow(
      expect.objectContaining({ code: 'prompt_unsuitable', path: 'logitscope', message: expect.stringContaining('[" ","?"]') }),
    );
  });

  it('refuses the token-identity prompt where the tokenizer merges its "?" into the line break before it', () => {
    const dir = path.join(root, 'merged-question');
    writeSpTokenizer(dir, { prependSpace: true, bos: 'template', words: [`${SP}?`, '\n?'] });
    const tok = loadTokenizer(dir);
    expect(() => resolveTechniques(BUILT_IN_TECHNIQUES, promptTokenizer(tok, bosPlan(tok, 1, false)))).toThrow(expect.objectContaining({ code: 'prompt_unsuitable', path: 'patchscope' }));
  });
});
