import fs from 'node:fs';
import { LogitscopeError } from '../errors.ts';
import type { TextFilter } from '../protocol/text-filter.ts';
import { builtinName, isBuiltinPath } from './builtin.ts';
import { readerFor, SUPPORTED_EXTENSIONS } from './formats.ts';
import { emptySkipCounts, throwIfAborted, type DataRecord, type RecordReader, type SkipCounts } from './records.ts';

export interface SliceSpec {
  /** Read in this order; record indices run on across files. */
  files: string[];
  /** Record range `[start, end)` over all records of `files` in order, before any filtering. */
  start?: number;
  end?: number;
  /** Keep only records whose `meta.pile_set_name` equals this. */
  pileSetName?: string;
  filter?: TextFilter;
  /** Stop once this many records have passed the filters. */
  limit?: number;
}

/** Records filtered out, each counted once under the first rule it fails, in this order. */
export interface FilterCounts {
  pileSetName: number;
  maxWords: number;
  maxChars: number;
}

export interface SliceStats {
  /** Records of the range that were read, whether they passed, were skipped or were filtered out. */
  scanned: number;
  passed: number;
  skipped: SkipCounts;
  filteredOut: number;
  filteredBy: FilterCounts;
  /** Readable scanned records per `pile_set_name`, before filtering, for choosing a filter. */
  sources: Record<string, number>;
}

export interface SliceProgress extends SliceStats {
  file: string;
  /** Bytes of the files read so far, compressed where the file is; against `totalBytes` it is a progress fraction. */
  bytesRead: number;
  totalBytes: number;
}

export interface ReadSliceOptions {
  signal?: AbortSignal;
  /** Called at most every 200 ms while reading, and once at the end. */
  onProgress?: (progress: SliceProgress) => void;
}

export interface SliceResult extends SliceStats {
  records: DataRecord[];
}

const PROGRESS_INTERVAL_MS = 200;

export function emptySliceStats(): SliceStats {
  return {
    scanned: 0,
    passed: 0,
    skipped: emptySkipCounts(),
    filteredOut: 0,
    filteredBy: { pileSetName: 0, maxWords: 0, maxChars: 0 },
    sources: {},
  };
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Checks a spec from an untrusted source, reporting every bad field at once; `path` is the first. */
export function validateSliceSpec(spec: unknown): SliceSpec {
  if (typeof spec !== 'object' || spec === null) {
    throw new LogitscopeError('argument_invalid', 'a slice must be an object', 'slice');
  }
  const s = spec as Record<string, unknown>;
  const problems: Array<[field: string, message: string]> = [];
  const integer = (field: string, value: unknown, min: number) => {
    if (value !== undefined && !(Number.isInteger(value) && (value as number) >= min)) {
      problems.push([field, `must be an integer ≥ ${min}, got ${show(value)}`]);
    }
  };
  if (!Array.isArray(s.files) || s.files.length === 0 || !s.files.every((f) => typeof f === 'string' && f !== '')) {
    problems.push(['files', 'must be a non-empty list of file paths']);
  }
  integer('start', s.start, 0);
  integer('end', s.end, 0);
  integer('limit', s.limit, 1);
  const start = s.start ?? 0;
  if (Number.isInteger(start) && Number.isInteger(s.end) && (s.end as number) <= (start as number)) {
    problems.push(['end', `must be greater than start (${start}), got ${s.end}`]);
  }
  if (s.pileSetName !== undefined && (typeof s.pileSetName !== 'string' || s.pileSetName === '')) {
    problems.push(['pileSetName', `must be a non-empty string, got ${show(s.pileSetName)}`]);
  }
  if (s.filter !== undefined) {
    if (typeof s.filter !== 'object' || s.filter === null) {
      problems.push(['filter', 'must be an object']);
    } else {
      const f = s.filter as Record<string, unknown>;
      integer('filter.maxWords', f.maxWords, 1);
      integer('filter.maxChars', f.maxChars, 1);
    }
  }
  if (problems.length) {
    const message = problems.map(([field, m]) => `${field} ${m}`).join('; ');
    throw new LogitscopeError('argument_invalid', `invalid slice: ${message}`, problems[0][0]);
  }
  return spec as SliceSpec;
}

/** Resolves every file's reader and size up front, so a typo fails before minutes of reading. */
async function checkFiles(files: string[]): Promise<{ readers: RecordReader[]; sizes: number[] }> {
  // A folder given for the files in it: said so, rather than "unsupported file type".
  const folder = files.find((f) => !isBuiltinPath(f) && fs.statSync(f, { throwIfNoEntry: false })?.isDirectory());
  if (folder) throw new LogitscopeError('dataset_unsupported', `is a directory: give the files in it (${SUPPORTED_EXTENSIONS.join(', ')})`, folder);
  const unsupported = files.filter((f) => !readerFor(f));
  if (unsupported.length) {
    throw new LogitscopeError(
      'dataset_unsupported',
      `unsupported file type (${unsupported.join(', ')}); supported: ${SUPPORTED_EXTENSIONS.join(', ')}`,
      unsupported[0],
    );
  }
  // Built-in datasets are no files: check the name now and count their size as 0 bytes.
  for (const f of files) if (isBuiltinPath(f)) builtinName(f);
  const stats = await Promise.all(files.map((f) => (isBuiltinPath(f) ? { isFile: () => true, size: 0 } : fs.promises.stat(f).catch(() => undefined))));
  const missing = files.filter((_, i) => !stats[i]?.isFile());
  if (missing.length) {
    throw new LogitscopeError('dataset_missing', `not found or not a regular file: ${missing.join(', ')}`, missing[0]);
  }
  return { readers: files.map((f) => readerFor(f)!), sizes: stats.map((s) => s!.size) };
}

/** Pieces of `text.split(' ')`, counting no further than `cap`. */
function wordCount(text: string, cap: number): number {
  let count = 1;
  for (let at = text.indexOf(' '); at !== -1 && count < cap; at = text.indexOf(' ', at + 1)) count++;
  return count;
}

/** Python's `len`: code points, so a surrogate pair (an emoji, say) is one character. */
function charCount(text: string, cap: number): number {
  // Code points never exceed UTF-16 units, so short texts need no counting.
  if (text.length < cap) return text.length;
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}

function failedRule(text: string, source: string | undefined, spec: SliceSpec): keyof FilterCounts | undefined {
  if (spec.pileSetName !== undefined && source !== spec.pileSetName) return 'pileSetName';
  const { maxWords, maxChars } = spec.filter ?? {};
  if (maxWords !== undefined && wordCount(text, maxWords) >= maxWords) return 'maxWords';
  if (maxChars !== undefined && charCount(text, maxChars) >= maxChars) return 'maxChars';
  return undefined;
}

function describeEmpty(stats: SliceStats, spec: SliceSpec, recordsSeen: number): string {
  const start = spec.start ?? 0;
  const range = spec.end === undefined ? `records ${start}..end` : `records ${start}..${spec.end - 1}`;
  if (stats.scanned === 0) return `${range} lie past the end of the files, which hold ${recordsSeen} records`;
  const parts = [`no record passed: scanned ${stats.scanned} of ${range}`];
  const { malformedJson, missingText, oversized } = stats.skipped;
  const skipped = malformedJson + missingText + oversized;
  if (skipped) {
    parts.push(`skipped ${skipped} (${malformedJson} malformed JSON, ${missingText} without text, ${oversized} oversized)`);
  }
  if (stats.filteredOut) {
    const { pileSetName, maxWords, maxChars } = stats.filteredBy;
    const by = [
      pileSetName && `${pileSetName} with pile_set_name ≠ ${show(spec.pileSetName)}`,
      maxWords && `${maxWords} with ≥ ${spec.filter?.maxWords} words`,
      maxChars && `${maxChars} with ≥ ${spec.filter?.maxChars} characters`,
    ].filter(Boolean);
    parts.push(`filtered out ${stats.filteredOut} (${by.join(', ')})`);
  }
  return parts.join('; ');
}

/**
 * The slice reader behind `readSlice`, `collectSlice` and `previewSlice`: updates `stats` as it
 * goes and stops reading (closing the file) as soon as `end` or `limit` is reached.
 */
export async function* scanSlice(
  spec: SliceSpec,
  stats: SliceStats,
  opts: ReadSliceOptions & { allowEmpty?: boolean } = {},
): AsyncGenerator<DataRecord, SliceStats> {
  validateSliceSpec(spec);
  const { readers, sizes } = await checkFiles(spec.files);
  const start = spec.start ?? 0;
  const end = spec.end ?? Infinity;
  const limit = spec.limit ?? Infinity;
  const totalBytes = sizes.reduce((a, b) => a + b, 0);
  let doneBytes = 0; // of files finished
  let fileBytes = 0; // of the current file
  let file = spec.files[0];
  let lastReport = 0;
  const report = (force: boolean) => {
    const now = Date.now();
    if (!opts.onProgress || (!force && now - lastReport < PROGRESS_INTERVAL_MS)) return;
    lastReport = now;
    const copy = { ...stats, skipped: { ...stats.skipped }, filteredBy: { ...stats.filteredBy }, sources: { ...stats.sources } };
    opts.onProgress({ ...copy, file, bytesRead: doneBytes + fileBytes, totalBytes });
  };

  let offset = 0; // records in the files before this one
  files: for (const [f, name] of spec.files.entries()) {
    if (offset >= end) break;
    file = name;
    const onBytesRead = (n: number) => {
      fileBytes = n;
      report(false);
    };
    const it = readers[f](file, { from: Math.max(0, start - offset), signal: opts.signal, onBytesRead });
    try {
      for (;;) {
        throwIfAborted(opts.signal);
        const next = await it.next();
        if (next.done) {
          offset += next.value;
          break;
        }
        const raw = next.value;
        const index = offset + raw.index;
        if (index < start) continue; // a reader need not skip records before the range itself
        if (index >= end) break files;
        stats.scanned++;
        if ('skip' in raw) {
          stats.skipped[raw.skip]++;
          continue;
        }
        if (raw.source !== undefined) stats.sources[raw.source] = (stats.sources[raw.source] ?? 0) + 1;
        const rule = failedRule(raw.text, raw.source, spec);
        if (rule) {
          stats.filteredOut++;
          stats.filteredBy[rule]++;
          continue;
        }
        stats.passed++;
        const record: DataRecord = { text: raw.text, file, index };
        if (raw.source !== undefined) record.source = raw.source;
        if (raw.track !== undefined) record.track = raw.track;
        yield record;
        if (stats.passed >= limit) break files;
      }
    } finally {
      // Closes the file when we stop early or the consumer stops iterating.
      await it.return(0);
    }
    doneBytes += sizes[f];
    fileBytes = 0;
  }
  report(true);
  if (stats.passed === 0 && !opts.allowEmpty) {
    throw new LogitscopeError('slice_empty', describeEmpty(stats, spec, offset), spec.files.join(', '));
  }
  return stats;
}

/**
 * Streams the records of a slice that pass its filters, in file order. Throws `slice_empty`
 * (with the counts) at the end if none did. The generator's return value is the final counts.
 */
export function readSlice(spec: SliceSpec, opts: ReadSliceOptions = {}): AsyncGenerator<DataRecord, SliceStats> {
  return scanSlice(spec, emptySliceStats(), opts);
}

/** All records of a slice in memory, with the counts of what was scanned, skipped and filtered out. */
export async function collectSlice(spec: SliceSpec, opts: ReadSliceOptions = {}): Promise<SliceResult> {
  const stats = emptySliceStats();
  const records: DataRecord[] = [];
  for await (const record of scanSlice(spec, stats, opts)) records.push(record);
  return { ...stats, records };
}
