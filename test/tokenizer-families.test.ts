import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode as gptEncode } from 'gpt-3-encoder';
import { loadTokenizer } from '../src-main/engine/tokenizer.ts';
import { LogitscopeError } from '../src-main/errors.ts';
import { writeTinyGptjTokenizer } from './fixtures/checkpoint-writer.ts';
import { pieceId, SP, spTokenizerJson, writeSpTokenizer } from './fixtures/sp-tokenizer.ts';

let root: string;
let n = 0;
const fresh = () => path.join(root, `case-${n++}`);
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

describe('a SentencePiece-style tokenizer.json (Llama 2, Mistral)', () => {
  const dir = () => path.join(root, 'llama');
  let json: Record<string, unknown>;
  beforeAll(() => {
    json = writeSpTokenizer(dir(), { prependSpace: true, bos: 'template' });
  });

  it('is read as SentencePiece style, with the template’s <s> as its BOS', () => {
    const tok = loadTokenizer(dir());
    expect(tok.style).toBe('sentencepiece');
    expect(tok.bos).toEqual({ id: pieceId(json, '<s>'), text: '<s>' });
  });

  it('encodes without BOS, a space written as ▁ and the first word given one', () => {
    const tok = loadTokenizer(dir());
    expect(tok.encode('cat -> hello')).toEqual([`${SP}cat`, `${SP}->`, `${SP}hello`].map((p) => pieceId(json, p)));
    expect(tok.decode(tok.encode('cat -> hello'))).toBe('cat -> hello');
  });

  it('shows a ▁ piece with a leading space, and a byte-fallback token as the byte it stands for', () => {
    const tok = loadTokenizer(dir());
    expect(tok.tokenString(pieceId(json, `${SP}hello`))).toBe(' hello');
    expect(tok.tokenString(pieceId(json, '<0x0A>'))).toBe('\n');
    expect(tok.tokenString(pieceId(json, '<0xC3>'))).toBe('<0xC3>');
    expect(tok.tokenString(pieceId(json, '<s>'))).toBe('<s>');
  });

  it('spells a character the vocabulary lacks as byte tokens, shown together as the character', () => {
    const tok = loadTokenizer(dir());
    // é is UTF-8 C3 A9; the vocabulary has neither the character nor a piece with it.
    const ids = tok.encode('é');
    expect(ids).toEqual([SP, '<0xC3>', '<0xA9>'].map((p) => pieceId(json, p)));
    expect(tok.tokenStrings(ids)).toEqual([' ', '', 'é']);
    expect(tok.decode(ids)).toBe('é');
  });

  it('has no padding rows of its own: every id it names is below the cut-off', () => {
    const tok = loadTokenizer(dir());
    expect(tok.vocabSize).toBe(tok.knownIds);
    expect(tok.vocabSize).toBe(Object.keys((json.model as { vocab: object }).vocab).length);
  });

  it('adds no BOS where tokenizer_config.json says add_bos_token is false, whatever the template says', () => {
    const d = fresh();
    writeSpTokenizer(d, { prependSpace: true, bos: 'template' });
    fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: false, bos_token: '<s>' }));
    expect(loadTokenizer(d).bos).toBeNull();
  });
});

describe("a SentencePiece-style tokenizer.json laid out as Gemma's", () => {
  it('takes BOS from tokenizer_config.json (add_bos_token, bos_token) when the post-processor has none', () => {
    const d = fresh();
    const json = writeSpTokenizer(d, { prependSpace: false, bos: 'config' });
    const tok = loadTokenizer(d);
    expect(tok.bos).toEqual({ id: pieceId(json, '<bos>'), text: '<bos>' });
  });

  it('gives the first word no ▁, as Gemma does not prepend one', () => {
    const d = fresh();
    const json = writeSpTokenizer(d, { prependSpace: false, bos: 'config' });
    expect(loadTokenizer(d).encode('cat')).toEqual([pieceId(json, 'cat')]);
  });

  it('refuses add_bos_token with a bos_token the vocabulary lacks, naming tokenizer.json', () => {
    const d = fresh();
    writeSpTokenizer(d, { prependSpace: false, bos: 'none' });
    fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: true, bos_token: { content: '<start>' } }));
    const e = errorOf(() => loadTokenizer(d));
    expect([e.code, e.path]).toEqual(['tokenizer_invalid', path.join(d, 'tokenizer.json')]);
    expect(e.message).toContain('<start>');
  });

  it('refuses a byte-fallback vocabulary that lacks one of the 256 byte tokens', () => {
    const d = fresh();
    const json = spTokenizerJson({ prependSpace: false, bos: 'none' });
    delete ((json.model as { vocab: Record<string, number> }).vocab)['<0x41>'];
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(json));
    const e = errorOf(() => loadTokenizer(d));
    expect(e.code).toBe('tokenizer_invalid');
    expect(e.message).toContain('<0x41>');
  });
});

describe('byte-level BPE tokenizers (GPT-2, GPT-J, Pythia, Qwen2, Llama 3)', () => {
  it('adds no BOS for GPT-J, and shows Ġ as a space', () => {
    const d = fresh();
    writeTinyGptjTokenizer(d, 'tokenizer.json');
    const tok = loadTokenizer(d);
    expect([tok.style, tok.bos]).toEqual(['byte-level', null]);
    const [the] = gptEncode(' the');
    expect(tok.tokenString(the)).toBe(' the');
  });

  it('takes a Llama 3 style BOS (<|begin_of_text|>) from a Sequence post-processor’s template', () => {
    const d = fresh();
    writeTinyGptjTokenizer(d, 'tokenizer.json');
    const file = path.join(d, 'tokenizer.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    json.added_tokens.push({ id: 50400, content: '<|begin_of_text|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    json.post_processor = {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: {} },
      ],
    };
    fs.writeFileSync(file, JSON.stringify(json));
    // Llama 3's tokenizer_config.json names its bos_token but leaves add_bos_token to the template.
    fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|begin_of_text|>' }));
    const tok = loadTokenizer(d);
    expect(tok.bos).toEqual({ id: 50400, text: '<|begin_of_text|>' });
    expect(tok.encode('Hello')).toEqual(gptEncode('Hello'));
  });

  it("counts added tokens that text encodes to (Pythia's whitespace runs) below the padding cut-off", () => {
    const d = fresh();
    writeTinyGptjTokenizer(d, 'tokenizer.json');
    const file = path.join(d, 'tokenizer.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    // Pythia's tokenizer: GPT-J's extra tokens are not there, its 23 whitespace runs are (here two, at 50257 and 50258).
    json.added_tokens = json.added_tokens.filter((t: { content: string }) => !t.content.startsWith('<|extratoken_'));
    json.added_tokens.push(
      { id: 50257, content: '  ', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
      { id: 50258, content: '   ', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
    );
    fs.writeFileSync(file, JSON.stringify(json));
    const tok = loadTokenizer(d);
    expect(tok.vocabSize).toBe(50259);
    expect(tok.encode('a   b')).toContain(50258);
  });
});

describe('tokenizers the app cannot show', () => {
  it('refuses a BPE that is neither byte-level nor SentencePiece-style', () => {
    const d = fresh();
    const json = spTokenizerJson({ prependSpace: false, bos: 'none' });
    json.normalizer = null;
    json.decoder = null;
    (json.model as Record<string, unknown>).byte_fallback = false;
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(json));
    const e = errorOf(() => loadTokenizer(d));
    expect(e.code).toBe('tokenizer_invalid');
    expect(e.message).toMatch(/byte-level.*SentencePiece/);
  });
});
