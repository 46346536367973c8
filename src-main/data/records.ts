import { LogitscopeError } from '../errors.ts';

/** One text record of a slice, as handed to the sweep. */
export interface DataRecord {
  text: string;
  /** The Pile's `meta.pile_set_name` (e.g. "Github"), or a corpus name; absent when the file has none. */
  source?: string;
  file: string;
  /**
   * 0-based index within the concatenation of the slice's files, counting every record in file
   * order, including ones later skipped or filtered out. So "records i..j" means the same thing
   * whatever filter is applied, which is how the protocols define their ranges.
   */
  index: number;
  /**
   * The record's own `track` field, when it has one: a token to follow at the example's position
   * (a sweep with `track: 'record'`, sweep/track.ts), as text (one token) or as a token id.
   */
  track?: string | number;
}

/** Records that occupy an index but cannot be used, by reason. */
export interface SkipCounts {
  /** A `.jsonl` line that is not valid JSON. */
  malformedJson: number;
  /** A record whose `text` is absent, null or not a string. */
  missingText: number;
  /** A line or paragraph longer than the reader's cap, dropped unread rather than exhausting memory. */
  oversized: number;
}
export type SkipReason = keyof SkipCounts;

export function emptySkipCounts(): SkipCounts {
  return { malformedJson: 0, missingText: 0, oversized: 0 };
}

/** What a format reader yields: `index` is local to the file. */
export type RawRecord =
  | { index: number; text: string; source?: string; track?: string | number }
  | { index: number; skip: SkipReason };

export interface ReaderContext {
  /** Local index of the first record the caller wants; readers may skip earlier ones cheaply. */
  from: number;
  signal?: AbortSignal;
  /** Called with the number of (compressed) bytes of this file read so far. */
  onBytesRead?: (bytes: number) => void;
  /** Longest line kept, in bytes (a txt paragraph: in UTF-16 units); longer ones are skipped as `oversized`. */
  maxLineBytes?: number;
}

/**
 * Reads one file. Yields records from `ctx.from` on; returns the number of records in the file
 * (as far as it was read), so a slice over several files can place the next file's indices.
 */
export type RecordReader = (file: string, ctx: ReaderContext) => AsyncGenerator<RawRecord, number>;

/**
 * V8 strings top out near 512 M UTF-16 units; a quarter of that leaves room for JSON.parse's copy.
 * Real Pile records are at most a few MB.
 */
export const DEFAULT_MAX_LINE_BYTES = 128 * 1024 * 1024;

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new LogitscopeError('cancelled', 'reading the dataset was cancelled');
}

/**
 * `pile_set_name` from a record's `meta`: an object as in the Pile's jsonl and parquet structs, or a
 * string, because some parquet copies store the meta dict as JSON or as a Python repr
 * (`{'pile_set_name': 'Github'}`), which JSON.parse rejects; a regex reads both.
 */
export function sourceFromMeta(meta: unknown): string | undefined {
  if (typeof meta === 'string') {
    return /["']pile_set_name["']\s*:\s*["']([^"']*)["']/.exec(meta)?.[1];
  }
  if (typeof meta === 'object' && meta !== null) {
    const name = (meta as Record<string, unknown>).pile_set_name;
    if (typeof name === 'string') return name;
  }
  return undefined;
}

/**
 * A record's `track` field as the sweep reads it: a string or a number is kept (sweep/track.ts
 * checks it is one token, before any work); anything else, or none, is no track token, which a
 * sweep that tracks record tokens reports for that record.
 */
export function trackOf(value: unknown): { track?: string | number } {
  if (typeof value === 'string' || typeof value === 'number') return { track: value };
  if (typeof value === 'bigint') return { track: Number(value) };
  return {};
}
