import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer as HfTokenizerLibrary } from '@huggingface/tokenizers';
import { LogitscopeError } from '../errors.ts';
import {
  baseVocabSize,
  bosText,
  checkCoverage,
  MERGES_TXT,
  readTokenizerJson,
  styleOf,
  TOKENIZER_JSON,
  tokenizerJsonFromFiles,
  VOCAB_JSON,
} from './tokenizer-files.ts';
import { displayBytes, displayRun, tokenBytes, tokenSpellings, type TokenStyle } from './token-text.ts';

export type { TokenStyle } from './token-text.ts';

/** A checkpoint's tokenizer, as the rest of the app sees it, whatever the model family. */
export interface Tokenizer {
  /**
   * Token ids of `text`, never with BOS: where a BOS goes is the engine's decision (engine/bos.ts).
   * Special tokens written in the text (`<|endoftext|>`) become their ids.
   */
  encode(text: string): number[];
  /** Text of `ids`; ids the tokenizer does not know (padding rows of the head) appear as `<|pad:ID|>`. */
  decode(ids: number[]): string;
  /**
   * Display form of one token: the text it stands for (" the", whether the vocabulary spells it
   * `Ġthe` or `▁the`; "\n" for the byte-fallback token `<0x0A>`). Tokens that are only part of a
   * UTF-8 character show their non-ASCII bytes as `<0xE2>`; added tokens show as written (`<s>`);
   * ids the tokenizer does not know show as `<|pad:ID|>`.
   */
  tokenString(id: number): string;
  /**
   * Display forms of a token sequence (a prompt's tokens): as tokenString, except that tokens
   * which only together form a UTF-8 character (CJK and emoji in byte-level BPE, byte-fallback
   * runs in SentencePiece) show it as text: each character goes to the token holding its last
   * byte, so a token that only starts one shows as "". Joined, they read as the decoded text.
   */
  tokenStrings(ids: readonly number[]): string[];
  /**
   * The padding cut-off: one past the highest id the tokenizer produces, its added tokens
   * included, but not GPT-J's `<|extratoken_N|>` names of padding rows (tokenizer-files.ts
   * baseVocabSize). Head rows at or past it are rows the tokenizer never produces: GPT-J 50257
   * of 50400, Pythia 50277 of 50304, Qwen2 151646 of 151936; Llama and Gemma have none.
   */
  readonly vocabSize: number;
  /** One past the highest id the tokenizer can name, added tokens included: 50400 with GPT-J's added_tokens. */
  readonly knownIds: number;
  readonly source: 'tokenizer.json' | 'vocab.json+merges.txt';
  /**
   * The id of the one vocabulary token that stands for exactly `text` (`?` is GPT-2's 30, Llama's
   * piece `?`; a single byte the vocabulary lacks is its byte-fallback token `<0x3F>`), or null
   * where no single token does. Unlike encode, no `▁` is prepended.
   */
  tokenFor(text: string): number | null;
  /** How the vocabulary spells text: byte-level BPE (`Ġ` for a space) or SentencePiece-style (`▁`, `<0xNN>`). */
  readonly style: TokenStyle;
  /**
   * The BOS token this tokenizer puts before every text (Llama's `<s>`, Llama 3's
   * `<|begin_of_text|>`, Gemma's `<bos>`), or null where it adds none (GPT-2, GPT-J, Pythia, Qwen2).
   */
  readonly bos: { id: number; text: string } | null;
}

/**
 * Loads the tokenizer from a Hugging Face checkpoint directory: `tokenizer.json` when present,
 * else `vocab.json` + `merges.txt` (+ `added_tokens.json`); `tokenizer_config.json` beside them
 * says whether BOS is added. Synchronous: the library is pure JS and reading a few MB of JSON
 * takes milliseconds.
 */
export function loadTokenizer(dir: string): Tokenizer {
  const has = (name: string) => fs.existsSync(path.join(dir, name));
  if (has(TOKENIZER_JSON)) {
    const file = path.join(dir, TOKENIZER_JSON);
    return wrap(readTokenizerJson(file), { dir, file, source: 'tokenizer.json' });
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
  return wrap(tokenizerJsonFromFiles(dir), { dir, file: path.join(dir, VOCAB_JSON), source: 'vocab.json+merges.txt' });
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
  token_to_id(token: string): number | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
  get_added_tokens_decoder(): Map<number, unknown>;
}
const HfTokenizerClass = HfTokenizerLibrary as new (json: object, config: object) => HfTokenizer;

function wrap(json: Record<string, unknown>, where: { dir: string; file: string; source: Tokenizer['source'] }): Tokenizer {
  const { file } = where;
  const style = styleOf(json, file);
  checkCoverage(json, style, file);
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizerClass(json, { clean_up_tokenization_spaces: false });
  } catch (e) {
    throw new LogitscopeError('tokenizer_invalid', `the tokenizer library rejected it (${(e as Error).message})`, file);
  }
  const bosName = bosText(where.dir, json);
  const bosId = bosName === undefined ? undefined : tok.token_to_id(bosName);
  if (bosName !== undefined && bosId === undefined) {
    throw new LogitscopeError('tokenizer_invalid', `the BOS token ${JSON.stringify(bosName)} is not in the vocabulary`, file);
  }

  const known = (id: number) => tok.id_to_token(id) !== undefined;
  let knownIds = 0;
  for (const id of tok.get_vocab(true).values()) knownIds = Math.max(knownIds, id + 1);
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
      s = !known(id) ? pad(id) : added.has(id) ? tok.id_to_token(id)! : displayBytes(tokenBytes(style, tok.id_to_token(id)!));
      shown.set(id, s);
    }
    return s;
  };

  const tokenStrings = (ids: readonly number[]): string[] => {
    const out = ids.map(tokenString);
    // Bytes of the vocabulary's tokens, with the token each came from; added and unknown ids end a run.
    let bytes: number[] = [];
    let owner: number[] = [];
    const flush = () => {
      for (const [t, text] of displayRun(bytes, owner)) out[t] = text;
      bytes = [];
      owner = [];
    };
    ids.forEach((id, t) => {
      if (!known(id) || added.has(id)) return flush();
      for (const b of tokenBytes(style, tok.id_to_token(id)!)) {
        bytes.push(b);
        owner.push(t);
      }
    });
    flush();
    return out;
  };

  const tokenFor = (text: string): number | null => {
    const spellings = tokenSpellings(style, text);
    for (const piece of spellings) {
      const id = tok.token_to_id(piece);
      if (id !== undefined && !added.has(id)) return id;
    }
    return null;
  };

  return {
    encode(text: string): number[] {
      return tok.encode(text, { add_special_tokens: false }).ids;
    },
    decode,
    tokenFor,
    tokenString,
    tokenStrings,
    vocabSize: baseVocabSize(json),
    knownIds,
    source: where.source,
    style,
    bos: bosId === undefined ? null : { id: bosId, text: bosName! },
  };
}
