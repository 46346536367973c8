/**
 * Reading a checkpoint's tokenizer files into one tokenizer.json object, and the facts the app
 * needs beside it that the tokenizer library does not answer: the token style, the BOS policy, the
 * base vocabulary, and whether the vocabulary can spell every text.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError } from '../errors.ts';
import { ENDOFTEXT_ID } from './config.ts';
import { BYTE_OF_SYMBOL, byteToken, SP_SPACE, type TokenStyle } from './token-text.ts';

export const TOKENIZER_JSON = 'tokenizer.json';
export const VOCAB_JSON = 'vocab.json';
export const MERGES_TXT = 'merges.txt';
export const ADDED_TOKENS_JSON = 'added_tokens.json';
export const TOKENIZER_CONFIG_JSON = 'tokenizer_config.json';

export interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
  [key: string]: unknown;
}

type Json = Record<string, unknown>;

export function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LogitscopeError('tokenizer_invalid', `not valid JSON (${(e as Error).message})`, file);
  }
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function readTokenizerJson(file: string): Json {
  const json = readJson(file);
  const model = isObject(json) ? json.model : undefined;
  if (!isObject(json) || !isObject(model) || !isObject(model.vocab) || !Array.isArray(model.merges) || model.merges.length === 0) {
    throw new LogitscopeError('tokenizer_invalid', 'expected a BPE tokenizer with "model.vocab" and non-empty "model.merges"', file);
  }
  // The library iterates `added_tokens` unconditionally; a hand-made file may leave it out.
  return { ...json, added_tokens: json.added_tokens ?? [] };
}

/** The tokenizer.json object Hugging Face would publish for GPT-2's vocab.json + merges.txt. */
export function tokenizerJsonFromFiles(dir: string): Json {
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

/** Every component type named in a tokenizer.json part, through Sequence nesting. */
function typesIn(part: unknown): string[] {
  if (!isObject(part)) return [];
  const nested = ['pretokenizers', 'decoders', 'normalizers', 'processors'].flatMap((k) => (Array.isArray(part[k]) ? (part[k] as unknown[]).flatMap(typesIn) : []));
  return [...(typeof part.type === 'string' ? [part.type] : []), ...nested];
}

/**
 * Byte-level when a ByteLevel pre-tokenizer or decoder maps bytes to symbols; SentencePiece-style
 * when the model falls back to byte tokens or the pipeline writes spaces as `▁`. Anything else
 * (WordPiece, a BPE with neither) is refused rather than shown wrongly.
 */
export function styleOf(json: Json, file: string): TokenStyle {
  const types = [...typesIn(json.pre_tokenizer), ...typesIn(json.decoder)];
  if (types.includes('ByteLevel')) return 'byte-level';
  const model = json.model as Json;
  const spaceAsPiece = JSON.stringify([json.normalizer, json.pre_tokenizer, json.decoder]).includes(SP_SPACE);
  if (model.byte_fallback === true || types.includes('Metaspace') || spaceAsPiece) return 'sentencepiece';
  throw new LogitscopeError('tokenizer_invalid', 'only byte-level BPE (GPT-2 style) and SentencePiece-style BPE (▁ spaces, byte fallback) tokenizers are supported', file);
}

/**
 * The library's BPE drops any piece missing from the vocabulary without a trace when there is no
 * unk token, so a truncated or mismatched vocabulary would silently lose text. A vocabulary that
 * can spell every byte (byte-level symbols, or byte-fallback tokens) and holds every merge's result
 * can never hit that.
 */
export function checkCoverage(json: Json, style: TokenStyle, file: string): void {
  const model = json.model as Json;
  const vocab = model.vocab as Json;
  const bytePieces = style === 'byte-level' ? [...BYTE_OF_SYMBOL.keys()] : model.byte_fallback === true ? Array.from({ length: 256 }, (_, b) => byteToken(b)) : [];
  if (style === 'sentencepiece' && model.byte_fallback !== true && typeof model.unk_token !== 'string') {
    throw new LogitscopeError('tokenizer_invalid', 'a SentencePiece-style tokenizer needs byte_fallback or an unk_token, or text it cannot spell is lost', file);
  }
  for (const symbol of bytePieces) {
    if (!Object.hasOwn(vocab, symbol)) {
      throw new LogitscopeError('tokenizer_invalid', `the vocabulary lacks the byte ${style === 'byte-level' ? 'symbol' : 'token'} ${JSON.stringify(symbol)}`, file);
    }
  }
  (model.merges as unknown[]).forEach((m, i) => {
    const pair = typeof m === 'string' ? m.split(' ') : m;
    if (!Array.isArray(pair) || pair.length !== 2 || !Object.hasOwn(vocab, `${pair[0]}${pair[1]}`)) {
      throw new LogitscopeError('tokenizer_invalid', `merge ${i + 1} (${JSON.stringify(m)}) does not produce a token of the vocabulary`, file);
    }
  });
}

/**
 * GPT-J's added tokens `<|extratoken_N|>` exist only to name its head's padding rows: text never
 * encodes to them as real text, so they stay past the padding cut-off.
 */
const PLACEHOLDER = /^<\|extratoken_\d+\|>$/;

/**
 * The padding cut-off: one past the highest id of the BPE vocabulary and of its added tokens
 * (`<|endoftext|>`, Pythia's whitespace runs, Qwen2's and Llama 3's special tokens), not counting
 * placeholder names of padding rows. Head rows at or past it are rows the tokenizer never produces:
 * GPT-J 50257..50399, Pythia 50277..50303, Qwen2 151646.. of 151936.
 */
export function baseVocabSize(json: Json): number {
  let size = 0;
  for (const id of Object.values((json.model as Json).vocab as Record<string, number>)) size = Math.max(size, id + 1);
  for (const t of (json.added_tokens ?? []) as AddedTokenJson[]) {
    if (Number.isInteger(t.id) && !PLACEHOLDER.test(t.content)) size = Math.max(size, t.id + 1);
  }
  return size;
}

/** A token as tokenizer_config.json writes it: a string, or an AddedToken object with `content`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  return isObject(v) && typeof v.content === 'string' ? v.content : undefined;
}

/** The special token a TemplateProcessing post-processor puts first in a single sequence (`<s> $A`), if any. */
function templateBos(post: unknown): string | undefined {
  if (!isObject(post)) return undefined;
  if (Array.isArray(post.processors)) {
    for (const p of post.processors) {
      const found = templateBos(p);
      if (found) return found;
    }
    return undefined;
  }
  if (post.type !== 'TemplateProcessing' || !Array.isArray(post.single)) return undefined;
  const first = post.single[0] as Json | undefined;
  const special = isObject(first) ? first.SpecialToken : undefined;
  return isObject(special) && typeof special.id === 'string' ? special.id : undefined;
}

/**
 * The BOS token the tokenizer puts before every text, as Hugging Face's tokenizer would with
 * add_special_tokens: tokenizer_config.json's `add_bos_token` decides where it says (its
 * `bos_token` names the token); otherwise the tokenizer.json post-processor's template does
 * (`<s> $A`: Llama 2, Mistral, Gemma; `<|begin_of_text|> $A`: Llama 3). GPT-2, GPT-J, Pythia and
 * Qwen2 add none.
 */
export function bosText(dir: string, json: Json): string | undefined {
  const configFile = path.join(dir, TOKENIZER_CONFIG_JSON);
  const config = fs.existsSync(configFile) ? readJson(configFile) : {};
  if (!isObject(config)) throw new LogitscopeError('tokenizer_invalid', 'expected a JSON object', configFile);
  const fromTemplate = templateBos(json.post_processor);
  if (config.add_bos_token === false) return undefined;
  if (config.add_bos_token === true) {
    const text = tokenText(config.bos_token) ?? fromTemplate;
    if (!text) throw new LogitscopeError('tokenizer_invalid', 'add_bos_token is true but no bos_token is named', configFile);
    return text;
  }
  return fromTemplate;
}
