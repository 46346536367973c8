import { collectSlice, type SliceProgress, type SliceStats } from '../data/slice.ts';
import { mulberry32, shuffleSeeded } from '../data/shuffle.ts';
import type { DataRecord } from '../data/records.ts';
import { LogitscopeError } from '../errors.ts';
import type { PresetName, ProtocolSettings, SweepExample } from './spec.ts';
import { type BosPlan, withBos } from '../engine/bos.ts';

/** PROTOCOL.md's two presets, setting for setting. */
export const PRESETS: Record<PresetName, ProtocolSettings> = {
  // The seed: the first 2000 records in file order, short ones only, BOS prepended (the config's
  // bos_token_id, or the tokenizer's own BOS where it always adds one) and counted when positions
  // are drawn (engine/bos.ts).
  logitscope: {
    preset: 'logitscope',
    poolStart: 0,
    poolEnd: 2000,
    filter: { maxWords: 200, maxChars: 1600 },
    shuffleSeed: null,
    evalStart: 0,
    evalEnd: null,
    bos: true,
    positionSeed: 0,
  },
  // The paper: a 200K-record pool, filtered, shuffled with seed 42; evaluation = items 10000..11999.
  // No BOS of its own: a tokenizer that always adds one (Llama, Gemma) keeps it at position 0, and
  // positions are drawn over the text's tokens only.
  patchscopes: {
    preset: 'patchscopes',
    poolStart: 0,
    poolEnd: 200_000,
    filter: { maxWords: 250, maxChars: 2000 },
    shuffleSeed: 42,
    evalStart: 10_000,
    evalEnd: 12_000,
    bos: false,
    positionSeed: 0,
  },
};

/** A preset with the user's overrides applied and checked; this is what a run records. */
export function resolveProtocol(preset: PresetName, overrides: Partial<Omit<ProtocolSettings, 'preset'>> = {}): ProtocolSettings {
  const base = PRESETS[preset];
  if (!base) throw new LogitscopeError('argument_invalid', `unknown preset "${preset}" (choose logitscope or patchscopes)`, 'preset');
  // An override given as undefined (an option left out) keeps the preset's value, in the filter too.
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  const p: ProtocolSettings = { ...base, ...defined(overrides), filter: { ...base.filter, ...defined(overrides.filter ?? {}) } };
  const bad: string[] = [];
  const natural = (v: number | null | undefined, name: string) => {
    if (v != null && (!Number.isInteger(v) || v < 0)) bad.push(`${name} must be a non-negative integer, got ${v}`);
  };
  natural(p.poolStart, 'poolStart');
  natural(p.poolEnd, 'poolEnd');
  natural(p.evalStart, 'evalStart');
  natural(p.evalEnd, 'evalEnd');
  natural(p.shuffleSeed, 'shuffleSeed');
  natural(p.positionSeed, 'positionSeed');
  if (p.limit !== undefined && (!Number.isInteger(p.limit) || p.limit < 1)) bad.push(`limit must be a positive integer, got ${p.limit}`);
  if (p.poolEnd <= p.poolStart) bad.push(`poolEnd (${p.poolEnd}) must be greater than poolStart (${p.poolStart})`);
  if (p.evalEnd !== null && p.evalEnd <= p.evalStart) bad.push(`evalEnd (${p.evalEnd}) must be greater than evalStart (${p.evalStart})`);
  if (bad.length > 0) throw new LogitscopeError('argument_invalid', bad.join('; '), 'protocol');
  return p;
}

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
    examples.push({ recordIndex: r.index, source: r.source, text: r.text, tokens, position: skip + drawPosition(opts.positionSeed, r.index, tokens.length - skip) });
  }
  return { examples, skipped };
}

export function drawPosition(seed: number, recordIndex: number, length: number): number {
  const mixed = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(recordIndex + 1, 0xc2b2ae35)) >>> 0;
  return Math.floor(mulberry32(mixed)() * length);
}
