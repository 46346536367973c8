/**
 * Each family's tokenizer, as the tiny family checkpoints ship it (test/fixtures/family-tokenizers.ts:
 * the hub's file layout and pipeline, a few hundred ids): byte-level BPE for GPT-2, Pythia and
 * Qwen2, SentencePiece-style BPE with byte fallback for Llama, Mistral and Gemma 2.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode as gptEncode } from 'gpt-3-encoder';
import { loadTokenizer } from '../src-main/engine/tokenizer.ts';
import { LogitscopeError } from '../src-main/errors.ts';
import type { Family } from './reference/families-config.ts';
import { writeTinyGptjTokenizer } from './fixtures/checkpoint-writer.ts';
import { writeFamilyTokenizer } from './fixtures/family-tokenizers.ts';
import { editJson, pieceId } from './fixtures/tokenizer-edits.ts';

const SP = '\u2581';
let root: string;
let n = 0;
/** A fresh folder holding `family`'s tokenizer files. */
function written(family: Family): { dir: string; vocabSize: number } {
  const dir = path.join(root, `${family}-${n++}`);
  fs.mkdirSync(dir);
  return { dir, vocabSize: writeFamilyTokenizer(dir, family).vocabSize };
}
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenizer-families-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function errorOf(f: () => unknown): LogitscopeError {
  try {
    f();
  } catch (e) {
    if (e instanceof LogitscopeError) return e;
    throw e;
  }
  throw new Error('expected a LogitscopeError');
}

describe.each([
  ['llama', '<s>', true],
  ['mistral', '<s>', true],
  ['gemma2', '<bos>', false],
] as const)('the %s tokenizer (SentencePiece style)', (family, bosText, prependsSpace) => {
  it('is read as SentencePiece style, with BOS from tokenizer_config.json', () => {
    const { dir } = written(family);
    const tok = loadTokenizer(dir);
    expect(tok.style).toBe('sentencepiece');
    expect(tok.bos).toEqual({ id: pieceId(dir, bosText), text: bosText });
  });

  it(`encodes without BOS, a space as ▁${prependsSpace ? ', the first word given one' : ' (none prepended)'}, and shows ▁ as a space`, () => {
    const { dir } = written(family);
    const tok = loadTokenizer(dir);
    const ids = tok.encode(prependsSpace ? 'the' : ' the');
    expect(ids).toEqual([pieceId(dir, `${SP}the`)]);
    expect(tok.tokenString(ids[0])).toBe(' the');
    expect(tok.decode(tok.encode('the cat'))).toBe('the cat');
  });

  it('spells a character the vocabulary lacks as byte-fallback tokens, shown together as the character', () => {
    const { dir } = written(family);
    const tok = loadTokenizer(dir);
    // é is UTF-8 C3 A9; the vocabulary has neither the character nor a piece with it.
    const ids = tok.encode('é');
    const bytes = ['<0xC3>', '<0xA9>'].map((p) => pieceId(dir, p));
    expect(ids).toEqual(prependsSpace ? [pieceId(dir, SP), ...bytes] : bytes);
    expect(tok.tokenStrings(ids)).toEqual(prependsSpace ? [' ', '', 'é'] : ['', 'é']);
    expect(tok.tokenString(bytes[0])).toBe('<0xC3>');
    expect(tok.tokenString(pieceId(dir, '<0x0A>'))).toBe('\n');
    expect(tok.decode(ids)).toBe('é');
  });

  it('has no padding cut-off below its head: every id it names is a real token', () => {
    const { dir, vocabSize } = written(family);
    const tok = loadTokenizer(dir);
    expect([tok.vocabSize, tok.knownIds]).toEqual([vocabSize, vocabSize]);
  });

  it('adds no BOS where tokenizer_config.json says add_bos_token is false, whatever the template says', () => {
    const { dir } = written(family);
    editJson<Record<string, unknown>>(dir, 'tokenizer_config.json', (c) => (c.add_bos_token = false));
    expect(loadTokenizer(dir).bos).toBeNull();
  });

  it('keeps BOS from tokenizer_config.json where the tokenizer.json has no template', () => {
    const { dir } = written(family);
    editJson(dir, 'tokenizer.json', (j) => (j.post_processor = null));
    expect(loadTokenizer(dir).bos).toEqual({ id: pieceId(dir, bosText), text: bosText });
  });
});

describe('SentencePiece-style tokenizers the app refuses', () => {
  it('refuses add_bos_token with a bos_token the vocabulary lacks, naming tokenizer.json', () => {
    const { dir } = written('gemma2');
    editJson<Record<string, unknown>>(dir, 'tokenizer_config.json', (c) => (c.bos_token = { content: '<start>' }));
    const e = errorOf(() => loadTokenizer(dir));
    expect([e.code, e.path]).toEqual(['tokenizer_invalid', path.join(dir, 'tokenizer.json')]);
    expect(e.message).toContain('<start>');
  });

  it('refuses a byte-fallback vocabulary that lacks one of the 256 byte tokens', () => {
    const { dir } = written('llama');
    editJson(dir, 'tokenizer.json', (j) => delete j.model.vocab['<0x41>']);
    const e = errorOf(() => loadTokenizer(dir));
    expect(e.code).toBe('tokenizer_invalid');
    expect(e.message).toContain('<0x41>');
  });

  it('refuses a BPE that is neither byte-level nor SentencePiece-style', () => {
    const { dir } = written('llama');
    editJson(dir, 'tokenizer.json', (j) => {
      j.normalizer = null;
      j.pre_tokenizer = null;
      j.decoder = null;
      j.model.byte_fallback = false;
    });
    const e = errorOf(() => loadTokenizer(dir));
    expect(e.code).toBe('tokenizer_invalid');
    expect(e.message).toMatch(/byte-level.*SentencePiece/);
  });
});

describe.each(['gpt2', 'gpt_neox', 'qwen2'] as const)('the %s tokenizer (byte-level BPE)', (family) => {
  it('adds no BOS, shows Ġ as a space, and gives the same pieces as GPT-2', () => {
    const { dir } = written(family);
    const tok = loadTokenizer(dir);
    expect([tok.style, tok.bos]).toEqual(['byte-level', null]);
    const ids = tok.encode(' the');
    expect(ids).toHaveLength(1);
    expect(tok.tokenString(ids[0])).toBe(' the');
    // Pythia puts two specials first, so its ids are GPT-2's shifted by 2.
    expect(ids[0] - (family === 'gpt_neox' ? 2 : 0)).toBe(gptEncode(' the')[0]);
  });

  it('counts its added special tokens below the padding cut-off', () => {
    const { dir, vocabSize } = written(family);
    expect(loadTokenizer(dir).vocabSize).toBe(vocabSize);
  });
});

describe('byte-level details of other families', () => {
  it('takes a Llama 3 style BOS (<|begin_of_text|>) from a Sequence post-processor’s template', () => {
    const dir = path.join(root, `llama3-${n++}`);
    writeTinyGptjTokenizer(dir, 'tokenizer.json');
    editJson(dir, 'tokenizer.json', (j) => {
      (j.added_tokens as unknown[]).push({ id: 50400, content: '<|begin_of_text|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
      j.post_processor = {
        type: 'Sequence',
        processors: [
          { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
          { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: {} },
        ],
      };
    });
    // Llama 3's tokenizer_config.json names its bos_token but leaves add_bos_token to the template.
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|begin_of_text|>' }));
    const tok = loadTokenizer(dir);
    expect(tok.bos).toEqual({ id: 50400, text: '<|begin_of_text|>' });
    expect(tok.encode('Hello')).toEqual(gptEncode('Hello'));
  });

  it("counts added tokens that text encodes to (the real Pythia's whitespace runs) below the padding cut-off", () => {
    const dir = path.join(root, `pythia-spaces-${n++}`);
    writeTinyGptjTokenizer(dir, 'tokenizer.json');
    editJson(dir, 'tokenizer.json', (j) => {
      // Pythia's tokenizer: GPT-J's extra tokens are not there, its 23 whitespace runs are (here two, at 50257 and 50258).
      const added = (j.added_tokens as { content: string }[]).filter((t) => !t.content.startsWith('<|extratoken_'));
      added.push(
        { id: 50257, content: '  ', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false } as never,
        { id: 50258, content: '   ', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false } as never,
      );
      j.added_tokens = added;
    });
    const tok = loadTokenizer(dir);
    expect(tok.vocabSize).toBe(50259);
    expect(tok.encode('a   b')).toContain(50258);
  });
});
