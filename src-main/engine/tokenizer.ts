import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { LogitscopeError } from '../errors.ts';
import { ENDOFTEXT_ID } from './config.ts';

/** GPT-J's tokenizer (GPT-2 byte-level BPE), as the rest of the app sees it. */
export interface GptjTokenizer {
  /** Token ids of `text`; no BOS is added (GPT-J's tokenizer adds none). `<|endoftext|>` in the text becomes 50256. */
  encode(text: string): number[];
  /** Text of `ids`; ids the tokenizer does not know (GPT-J's padding rows) appear as `<|pad:ID|>`. */
  decode(ids: number[]): string;
  /**
   * Display form of one token: its decoded text (" the"). Tokens that are only part of a UTF-8
   * character show their non-ASCII bytes as `<0xE2>`; ids the tokenizer does not know show as `<|pad:ID|>`.
   */
  tokenString(id: number): string;
  /**
   * Display forms of a token sequence (a prompt's tokens): as tokenString, except that byte-level
   * tokens which only together form a UTF-8 character (CJK, emoji) show it as text: each character
   * goes to the token holding its last byte, so a token that only starts one shows as "". Joined,
   * they read as the decoded text.
   */
  tokenStrings(ids: readonly number[]): string[];
  /**
   * The size of the base vocabulary: one past the highest id of the BPE model's own vocabulary
   * (`<|endoftext|>` included), not counting added tokens outside it. 50257 for GPT-2's and GPT-J's
   * files alike: GPT-J's tokenizer adds `<|extratoken_1|>`..`<|extratoken_143|>` at 50257..50399 only
   * to name the head's padding rows, and text never encodes to them. This is the padding cut-off:
   * ids at or past it are rows of the head the tokenizer never produces. (Hugging Face's
   * `tokenizer.vocab_size` means the same; `len(tokenizer)` counts the added tokens.)
   */
  readonly vocabSize: number;
  /** One past the highest id the tokenizer can name, added tokens included: 50400 with GPT-J's added_tokens. */
  readonly knownIds: number;
  readonly source: 'tokenizer.json' | 'vocab.json+merges.txt';
}

const TOKENIZER_JSON = 'tokenizer.json';
const VOCAB_JSON = 'vocab.json';
const MERGES_TXT = 'merges.txt';
const ADDED_TOKENS_JSON = 'added_tokens.json';

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
  [key: string]: unknown;
}

/**
 * Loads the tokenizer from a Hugging Face checkpoint directory: `tokenizer.json` when present,
 * else `vocab.json` + `merges.txt` (+ `added_tokens.json`). Synchronous: the library is pure JS
 * and reading a few MB of JSON takes milliseconds.
 */
export function loadTokenizer(dir: string): GptjTokenizer {
  const has = (name: string) => fs.existsSync(path.join(dir, name));
  if (has(TOKENIZER_JSON)) {
    const file = path.join(dir, TOKENIZER_JSON);
    return wrap(readTokenizerJson(file), file, 'tokenizer.json');
  }
  if (!has(VOCAB_JSON) && !has(MERGES_TXT)) {
    throw new LogitscopeError(
      'tokenizer_missing',
      `no tokenizer in ${dir}: looked for ${TOKENIZER_JSON}, or ${VOCAB_JSON} + ${MERGES_TXT}`,
      dir,
    );
  }
  for (const name of [VOCAB_JSON, MERGES_TXT]) {
    if (!has(name)) {
      throw new LogitscopeError('tokenizer_invalid', `${name} is missing (needed with ${VOCAB_JSON} + ${MERGES_TXT})`, path.join(dir, name));
    }
  }
  return wrap(tokenizerJsonFromFiles(dir), path.join(dir, VOCAB_JSON), 'vocab.json+merges.txt');
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LogitscopeError('tokenizer_invalid', `not valid JSON (${(e as Error).message})`, file);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readTokenizerJson(file: string): Record<string, unknown> {
  const json = readJson(file);
  const model = isObject(json) ? json.model : undefined;
  if (!isObject(json) || !isObject(model) || !isObject(model.vocab) || !Array.isArray(model.merges) || model.merges.length === 0) {
    throw new LogitscopeError('tokenizer_invalid', 'expected a BPE tokenizer with "model.vocab" and non-empty "model.merges"', file);
  }
  // The library iterates `added_tokens` unconditionally; a hand-made file may leave it out.
  return { ...json, added_tokens: json.added_tokens ?? [] };
}

/** The tokenizer.json object Hugging Face would publish for GPT-2's vocab.json + merges.txt. */
function tokenizerJsonFromFiles(dir: string): Record<string, unknown> {
  const vocabFile = path.join(dir, VOCAB_JSON);
  const vocab = readJson(vocabFile);
  if (!isObject(vocab) || !Object.values(vocab).every((v) => Number.isInteger(v))) {
    throw new LogitscopeError('tokenizer_invalid', 'expected an object from token to integer id', vocabFile);
  }
  const mergesFile = path.join(dir, MERGES_TXT);
  const merges: [string, string][] = [];
  const lines = fs.readFileSync(mergesFile, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line === '' || (i === 0 && line.startsWith('#version'))) continue;
    // Byte-level tokens never contain a plain space (it is mapped to "Ġ"), so one space separates the pair.
    const pair = line.split(' ');
    if (pair.length !== 2 || !pair[0] || !pair[1]) {
      throw new LogitscopeError('tokenizer_invalid', `line ${i + 1} is not "left right": ${JSON.stringify(line)}`, mergesFile);
    }
    merges.push(pair as [string, string]);
  }
  if (merges.length === 0) throw new LogitscopeError('tokenizer_invalid', 'holds no merges', mergesFile);

  const eot = '<|endoftext|>';
  const added: AddedTokenJson[] = [{ id: (vocab[eot] as number | undefined) ?? ENDOFTEXT_ID, content: eot, special: true }];
  const addedFile = path.join(dir, ADDED_TOKENS_JSON);
  if (fs.existsSync(addedFile)) {
    const extra = readJson(addedFile);
    if (!isObject(extra) || !Object.values(extra).every((v) => Number.isInteger(v))) {
      throw new LogitscopeError('tokenizer_invalid', 'expected an object from token to integer id', addedFile);
    }
    for (const [content, id] of Object.entries(extra)) {
      if (content !== eot) added.push({ id: id as number, content, special: false });
    }
  }

  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    added_tokens: added.map((t) => ({ single_word: false, lstrip: false, rstrip: false, normalized: false, ...t })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, vocab, merges },
  };
}

/**
 * The part of the library's Tokenizer used here. Its .d.ts files import each other without file
 * extensions, which NodeNext resolution cannot follow, so TypeScript sees the class as `any`
 * (skipLibCheck hides the error); this restores the types we rely on.
 */
interface HfTokenizer {
  /** Silently drops a piece the vocabulary lacks when there is no unk token; `checkCoverage` rules that out. */
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[] };
  /** Throws on an empty list. */
  decode(ids: number[], options: { clean_up_tokenization_spaces: boolean }): string;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
  get_added_tokens_decoder(): Map<number, unknown>;
}
const HfTokenizerClass = Tokenizer as new (json: object, config: object) => HfTokenizer;

/**
 * The library's BPE drops any piece missing from the vocabulary without a trace (GPT-2 has no unk
 * token), so a truncated or mismatched vocabulary would silently lose text. A byte-level vocabulary
 * that holds all 256 byte symbols and every merge's result can never hit that.
 */
function checkCoverage(model: Record<string, unknown>, file: string): void {
  const vocab = model.vocab as Record<string, unknown>;
  for (const symbol of BYTE_OF_SYMBOL.keys()) {
    if (!Object.hasOwn(vocab, symbol)) {
      throw new LogitscopeError('tokenizer_invalid', `the vocabulary lacks the byte-level symbol ${JSON.stringify(symbol)}`, file);
    }
  }
  const merges = model.merges as unknown[];
  merges.forEach((m, i) => {
    const pair = typeof m === 'string' ? m.split(' ') : m;
    if (!Array.isArray(pair) || pair.length !== 2 || !Object.hasOwn(vocab, `${pair[0]}${pair[1]}`)) {
      throw new LogitscopeError('tokenizer_invalid', `merge ${i + 1} (${JSON.stringify(m)}) does not produce a token of the vocabulary`, file);
    }
  });
}

function wrap(json: Record<string, unknown>, file: string, source: GptjTokenizer['source']): GptjTokenizer {
  checkCoverage(json.model as Record<string, unknown>, file);
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizerClass(json, { clean_up_tokenization_spaces: false });
  } catch (e) {
    throw new LogitscopeError('tokenizer_invalid', `the tokenizer library rejected it (${(e as Error).message})`, file);
  }
  const known = (id: number) => tok.id_to_token(id) !== undefined;
  let knownIds = 0;
  for (const id of tok.get_vocab(true).values()) knownIds = Math.max(knownIds, id + 1);
  const vocabSize = baseVocabSize(json);
  const checkId = (id: number) => {
    if (!Number.isInteger(id) || id < 0) throw new LogitscopeError('token_out_of_range', `token id must be a non-negative integer, got ${id}`, 'id');
  };
  const pad = (id: number) => `<|pad:${id}|>`;

  // The library throws on an empty list and yields garbage for unknown ids, so decode runs of known ids
  // and splice placeholders between them.
  const decode = (ids: number[]): string => {
    let out = '';
    let run: number[] = [];
    const flush = () => {
      if (run.length > 0) out += tok.decode(run, { clean_up_tokenization_spaces: false });
      run = [];
    };
    for (const id of ids) {
      checkId(id);
      if (known(id)) {
        run.push(id);
      } else {
        flush();
        out += pad(id);
      }
    }
    flush();
    return out;
  };

  const added = new Set([...tok.get_added_tokens_decoder().keys()]);
  const shown = new Map<number, string>();
  const tokenString = (id: number): string => {
    checkId(id);
    let s = shown.get(id);
    if (s === undefined) {
      s = known(id) ? displayForm(tok.id_to_token(id)!, added.has(id)) : pad(id);
      shown.set(id, s);
    }
    return s;
  };

  const tokenStrings = (ids: readonly number[]): string[] => {
    const out = ids.map(tokenString);
    // Bytes of the byte-level tokens, with the token each came from; added and unknown ids end a run.
    let bytes: number[] = [];
    let owner: number[] = [];
    const flush = () => {
      if (bytes.length === 0) return;
      const shown = new Map<number, string>();
      for (let i = 0; i < bytes.length; ) {
        const n = utf8Length(bytes[i]);
        const char = n > 1 && i + n <= bytes.length ? decodeStrict(bytes.slice(i, i + n)) : bytes[i] < 0x80 ? String.fromCharCode(bytes[i]) : undefined;
        const at = char === undefined ? owner[i] : owner[i + n - 1];
        shown.set(at, (shown.get(at) ?? '') + (char ?? `<0x${bytes[i].toString(16).toUpperCase().padStart(2, '0')}>`));
        for (let j = i; j < i + (char === undefined ? 1 : n); j++) if (!shown.has(owner[j])) shown.set(owner[j], '');
        i += char === undefined ? 1 : n;
      }
      for (const [t, text] of shown) out[t] = text;
      bytes = [];
      owner = [];
    };
    ids.forEach((id, t) => {
      if (!known(id) || added.has(id)) return flush();
      for (const c of tok.id_to_token(id)!) {
        bytes.push(BYTE_OF_SYMBOL.get(c) ?? 0x3f);
        owner.push(t);
      }
    });
    flush();
    return out;
  };

  return {
    encode(text: string): number[] {
      return tok.encode(text, { add_special_tokens: false }).ids;
    },
    decode,
    tokenString,
    tokenStrings,
    vocabSize,
    knownIds,
    source,
  };
}

/**
 * One past the highest id of the BPE model's vocabulary, and of `<|endoftext|>` where it is only an
 * added token (a hand-made tokenizer.json may keep it out of model.vocab). Other added tokens, such
 * as GPT-J's `<|extratoken_N|>`, do not count: text never encodes to them.
 */
function baseVocabSize(json: Record<string, unknown>): number {
  const vocab = (json.model as Record<string, unknown>).vocab as Record<string, number>;
  let size = 0;
  for (const id of Object.values(vocab)) size = Math.max(size, id + 1);
  for (const t of (json.added_tokens ?? []) as AddedTokenJson[]) {
    if (t.content === '<|endoftext|>' && Number.isInteger(t.id)) size = Math.max(size, t.id + 1);
  }
  return size;
}

/**
 * GPT-2's byte-level alphabet, symbol -> byte: printable Latin-1 bytes stand for themselves, the
 * other bytes were shifted to U+0100 onward. Used to check a vocabulary's coverage and to show a
 * partial UTF-8 character byte by byte, which the library's decoder would turn into an anonymous "\uFFFD".
 */
const BYTE_OF_SYMBOL: ReadonlyMap<string, number> = (() => {
  const table = new Map<string, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table.set(String.fromCharCode(printable ? b : 256 + shifted++), b);
  }
  return table;
})();

/** Bytes of the UTF-8 sequence a lead byte starts (1 for ASCII and for a byte that cannot lead one). */
function utf8Length(b: number): number {
  return b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? (b <= 0xef ? 3 : 1) : b >= 0xc2 && b <= 0xdf ? 2 : 1;
}

function decodeStrict(bytes: number[]): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

function displayForm(token: string, isAdded: boolean): string {
  if (isAdded) return token;
  const bytes = Uint8Array.from([...token], (c) => BYTE_OF_SYMBOL.get(c) ?? 0x3f);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return Array.from(bytes, (b) => (b < 0x80 ? String.fromCharCode(b) : `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)).join('');
  }
}
