import { LogitscopeError } from '../errors.ts';
import type { DataRecord } from './records.ts';
import { emptySliceStats, scanSlice, validateSliceSpec, type SliceProgress, type SliceSpec, type SliceStats } from './slice.ts';

/** Enough to show counts and pick a filter in well under a second on a fast disk, not a whole 14 GB shard. */
export const DEFAULT_PREVIEW_SCAN_CAP = 20_000;

export interface PreviewOptions {
  /** How many passing records to return as samples (the first ones, in file order). */
  sampleCount: number;
  /** Scan at most this many records of the range; default `DEFAULT_PREVIEW_SCAN_CAP`. */
  scanCap?: number;
  signal?: AbortSignal;
}

export interface SlicePreview extends SliceStats {
  samples: DataRecord[];
  /** Passing records that carry a `track` field (what a sweep with track 'record' follows; its tokens are checked then, against the model). */
  withTrack: number;
  /** True when scanning stopped at `scanCap` before the slice's `end` or `limit`: the counts cover only part of it. */
  capped: boolean;
  bytesRead: number;
  totalBytes: number;
}

/** Counts and a few samples of a slice for the dataset screen; an empty slice is reported, not thrown. */
export async function previewSlice(spec: SliceSpec, opts: PreviewOptions): Promise<SlicePreview> {
  validateSliceSpec(spec);
  const scanCap = opts.scanCap ?? DEFAULT_PREVIEW_SCAN_CAP;
  for (const [field, value, min] of [['sampleCount', opts.sampleCount, 0], ['scanCap', scanCap, 1]] as const) {
    if (!Number.isInteger(value) || value < min) {
      throw new LogitscopeError('argument_invalid', `${field} must be an integer ≥ ${min}, got ${value}`, field);
    }
  }
  const start = spec.start ?? 0;
  const capEnd = start + scanCap;
  const cappedSpec = capEnd < (spec.end ?? Infinity) ? { ...spec, end: capEnd } : spec;

  const stats = emptySliceStats();
  const samples: DataRecord[] = [];
  let withTrack = 0;
  let last: SliceProgress | undefined;
  const records = scanSlice(cappedSpec, stats, { signal: opts.signal, allowEmpty: true, onProgress: (p) => (last = p) });
  for await (const record of records) {
    if (samples.length < opts.sampleCount) samples.push(record);
    if (record.track !== undefined) withTrack++;
  }
  // Reaching the cap exactly at the end of the files also reads as capped; "maybe more" is the honest answer.
  const capped = cappedSpec !== spec && stats.scanned === scanCap && stats.passed < (spec.limit ?? Infinity);
  return { ...stats, samples, withTrack, capped, bytesRead: last?.bytesRead ?? 0, totalBytes: last?.totalBytes ?? 0 };
}
