import { collectSlice, type SliceProgress, type SliceStats } from './slice.ts';
import { mulberry32, shuffleSeeded } from './shuffle.ts';
import type { DataRecord } from './records.ts';
import { LogitscopeError } from '../errors.ts';
import type { ProtocolSettings, SweepExample } from '../protocol/spec.ts';
import { type BosPlan, withBos } from '../engine/bos.ts';

export interface Selection {
  records: DataRecord[];
  /** How the pool was read: scanned, passed, skipped (malformed lines...) and filtered-out counts. */
  pool: SliceStats;
}

/** The records a protocol evaluates on: the filtered pool, shuffled if asked, then the evaluation slice. */
export async function selectRecords(files: string[], p: ProtocolSettings, opts: { signal?: AbortSignal; onProgress?: (s: SliceProgress) => void } = {}): Promise<Selection> {
  const wanted = p.evalEnd === null ? undefined : p.evalEnd;
  const capped = p.limit === undefined ? wanted : Math.min(wanted ?? Infinity, p.evalStart + p.limit);
  // Without a shuffle, reading can stop as soon as the evaluation slice is complete.
  const stopAfter = p.shuffleSeed === null && capped !== undefined && Number.isFinite(capped) ? capped : undefined;
  const pool = await collectSlice(
    { files, start: p.poolStart, end: p.poolEnd, pileSetName: p.pileSetName, filter: p.filter, limit: stopAfter },
    { signal: opts.signal, onProgress: opts.onProgress },
  );
  const ordered = p.shuffleSeed === null ? pool.records : shuffleSeeded(pool.records, p.shuffleSeed);
  const end = capped === undefined ? undefined : Math.min(capped, ordered.length);
  const records = ordered.slice(p.evalStart, end);
  const { records: _unused, ...stats } = pool;
  if (records.length === 0) {
    throw new LogitscopeError(
      'slice_empty',
      `the evaluation slice ${p.evalStart}..${p.evalEnd ?? 'end'} is empty: only ${pool.records.length} records passed the filter (scanned ${pool.scanned})`,
      'protocol',
    );
  }
  return { records, pool: stats };
}

/** Examples that could not be run, by reason; reported with the run, never a crash. */
export interface ExampleSkips {
  /** The text tokenizes to no tokens. */
  empty: number;
  /** More tokens than the model's n_positions. */
  tooLong: number;
}

/**
 * Tokenizes records and draws each one's position uniformly over [0, len-1], the BOS included
 * where the plan says it is drawn (engine/bos.ts), else over the text's tokens only.
 * The draw depends only on the seed and the record's index, so the same record gets the same
 * position in every run with that seed, whatever else the run contains.
 */
export function buildExamples(
  records: DataRecord[],
  opts: { tokenize(text: string): number[]; bos: BosPlan; nCtx: number; positionSeed: number },
): { examples: SweepExample[]; skipped: ExampleSkips } {
  const skip = opts.bos.id !== null && !opts.bos.drawn ? 1 : 0;
  const skipped: ExampleSkips = { empty: 0, tooLong: 0 };
  const examples: SweepExample[] = [];
  for (const r of records) {
    const ids = opts.tokenize(r.text);
    if (ids.length === 0) {
      skipped.empty++;
      continue;
    }
    const tokens = withBos(opts.bos, ids);
    if (tokens.length > opts.nCtx) {
      skipped.tooLong++;
      continue;
    }
    const position = skip + drawPosition(opts.positionSeed, r.index, tokens.length - skip);
    examples.push({ recordIndex: r.index, source: r.source, text: r.text, tokens, position, ...(r.track !== undefined && { trackGiven: r.track }) });
  }
  return { examples, skipped };
}

export function drawPosition(seed: number, recordIndex: number, length: number): number {
  const mixed = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(recordIndex + 1, 0xc2b2ae35)) >>> 0;
  return Math.floor(mulberry32(mixed)() * length);
}
