/**
 * The affine tuned lens (PROTOCOL.md's "affine tuned lens"): per source layer l, a map
 * h ↦ h·W_l + b_l fitted by least squares from the layer's residual to the final residual (the last
 * block's output, before ln_f) at the same position, then read through the model's own ln_f +
 * lm_head. This file holds what identifies a fitted lens (its settings and cache key) and where
 * its files are; fit.ts makes one, apply.ts uses one.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { verifyHashes } from '../engine/cache-check.ts';
import { LogitscopeError } from '../errors.ts';
import { checkProblem, type LensCheck } from './check.ts';
import { LENS_META, LENS_WEIGHTS, type LensOverrides, type LensRecord, type LensSettings, type LensTrainSlice } from '../protocol/lens-settings.ts';
import type { ProtocolSettings } from '../protocol/spec.ts';

/**
 * Bump when the fit's definition or numerics change (collection, centring, ridge rule, solver), so
 * that lenses fitted by older code are not reused; they stay on disk under their old key.
 */
export const TUNED_LENS_VERSION = 2; // 2: a held-out check and the weights' content hash in lens.json

/** Relative ridge: λ_l = ridge · tr(Σ_l)/d, Σ_l the centred scatter of layer l's rows (see fit.ts). */
export const DEFAULT_RIDGE = 1e-5;
/** Train examples by default, as in the Patchscopes paper (records 0..9999 of its shuffled pool). */
export const DEFAULT_TRAIN_EXAMPLES = 10_000;

/**
 * The default train slice for a sweep's protocol, disjoint from its evaluation records, never
 * shrunk or moved to make it fit (resolveLensSettings refuses instead, naming the settings that fix it):
 * - an evaluation slice that starts after item 0 of its pool (the `patchscopes` preset: items
 *   10000..11999 of the shuffled pool) trains on the 10,000 items just before it, of the same pool
 *   (items 0..9999 for `patchscopes`, as in the paper); an evaluation slice starting at item
 *   1..9999 leaves fewer than 10,000 items before it, and is refused;
 * - an evaluation slice that starts at item 0 (the `logitscope` preset: the pool in file order)
 *   trains on the first 10,000 records that pass the same filter after the pool (records from
 *   poolEnd on, in file order, a train pool of max(pool size, 100,000) records).
 * Disjointness is checked again on the actual records when a sweep is prepared.
 */
export function defaultTrainSlice(p: ProtocolSettings): LensTrainSlice {
  const common = { filter: p.filter, pileSetName: p.pileSetName, bos: p.bos };
  if (p.evalStart > 0) {
    return { ...common, poolStart: p.poolStart, poolEnd: p.poolEnd, shuffleSeed: p.shuffleSeed, start: p.evalStart - DEFAULT_TRAIN_EXAMPLES, end: p.evalStart };
  }
  const span = p.poolEnd - p.poolStart;
  return { ...common, poolStart: p.poolEnd, poolEnd: p.poolEnd + Math.max(span, 10 * DEFAULT_TRAIN_EXAMPLES), shuffleSeed: null, start: 0, end: DEFAULT_TRAIN_EXAMPLES };
}

/**
 * The lens settings for a sweep: the preset's defaults with the user's overrides, checked. Errors
 * name the technique's settings (`techniques.<index>.lens...`) and, where a slice is at fault, the
 * settings that would fix it, in the API's words and the command line's.
 */
export function resolveLensSettings(o: { protocol: ProtocolSettings; files: string[]; modelIdentity: string; computeDtype: string; overrides?: LensOverrides; index?: number }): LensSettings {
  const over = o.overrides ?? {};
  const field = `techniques${o.index === undefined ? '' : `.${o.index}`}.lens`;
  const defined = <T extends object>(x: T) => Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined)) as Partial<T>;
  const p = o.protocol;
  const given = defined(over.train ?? {});
  const train: LensTrainSlice = { ...defaultTrainSlice(p), ...given };
  if (train.start < 0) {
    // Only the default can start before item 0: fewer than 10,000 items come before the evaluation slice.
    throw new LogitscopeError(
      'argument_invalid',
      `tuned lens: the default train slice is the ${DEFAULT_TRAIN_EXAMPLES} items before the evaluation slice, but it starts at item ${p.evalStart}, so only ${p.evalStart} come before it; ` +
        `train on those (lens.train {start: 0, end: ${p.evalStart}}; --lens-train 0-${p.evalStart - 1}) or start the evaluation at item ${DEFAULT_TRAIN_EXAMPLES} or later (overrides.evalStart; --eval-start ${DEFAULT_TRAIN_EXAMPLES})`,
      `${field}.train`,
    );
  }
  const bad: string[] = [];
  const natural = (v: number | null, name: string) => {
    if (v !== null && !(Number.isInteger(v) && v >= 0)) bad.push(`${name} must be a non-negative integer, got ${v}`);
  };
  natural(train.poolStart, 'train.poolStart');
  natural(train.poolEnd, 'train.poolEnd');
  natural(train.start, 'train.start');
  natural(train.end, 'train.end');
  natural(train.shuffleSeed, 'train.shuffleSeed');
  if (train.poolEnd <= train.poolStart) bad.push(`train.poolEnd (${train.poolEnd}) must be greater than train.poolStart (${train.poolStart})`);
  if (train.end - train.start < 2) bad.push(`the train slice ${train.start}..${train.end} must hold at least 2 items`);
  const ridge = over.ridge ?? DEFAULT_RIDGE;
  if (!(Number.isFinite(ridge) && ridge > 0 && ridge < 1)) bad.push(`ridge must be a number in (0, 1), got ${ridge}`);
  const positionSeed = over.positionSeed ?? p.positionSeed;
  natural(positionSeed, 'positionSeed');
  if (bad.length > 0) throw new LogitscopeError('argument_invalid', `tuned lens: ${bad.join('; ')}`, field);
  const poolSize = train.poolEnd - train.poolStart;
  if (train.end > poolSize) {
    // Items past the pool do not exist: a longer range would fit the same lens again under a new key.
    throw new LogitscopeError(
      'argument_invalid',
      `tuned lens: the train pool holds ${poolSize} records (records ${train.poolStart}..${train.poolEnd - 1}), so its items are 0..${poolSize - 1}; the train slice ${train.start}..${train.end - 1} runs past it: end it at item ${poolSize - 1} at most (lens.train.end ${poolSize}; --lens-train ${train.start}-${poolSize - 1})`,
      `${field}.train.end`,
    );
  }
  const samePool = train.poolStart === p.poolStart && train.poolEnd === p.poolEnd && train.shuffleSeed === p.shuffleSeed && train.pileSetName === p.pileSetName && JSON.stringify(train.filter) === JSON.stringify(p.filter);
  const evalEnd = Math.min(p.evalEnd ?? Infinity, p.limit === undefined ? Infinity : p.evalStart + p.limit);
  if (samePool && train.start < evalEnd && p.evalStart < train.end) {
    const fixes = [
      p.evalStart >= 2 && `train on items before it (lens.train {start: 0, end: ${p.evalStart}}; --lens-train 0-${p.evalStart - 1})`,
      Number.isFinite(evalEnd) && evalEnd + 2 <= poolSize && `train on items after it (lens.train {start: ${evalEnd}, end: ${Math.min(poolSize, evalEnd + (train.end - train.start))}}; --lens-train ${evalEnd}-${Math.min(poolSize, evalEnd + (train.end - train.start)) - 1})`,
      `move the evaluation slice to start at item ${train.end} (overrides.evalStart; --eval-start ${train.end})`,
    ].filter(Boolean);
    throw new LogitscopeError(
      'argument_invalid',
      `tuned lens: the train slice, items ${train.start}..${train.end - 1} of the pool, overlaps the evaluation slice, items ${p.evalStart}..${Number.isFinite(evalEnd) ? evalEnd - 1 : 'end'} of the same pool; ${fixes.join(', or ')}`,
      `${field}.train`,
    );
  }
  return { version: TUNED_LENS_VERSION, modelIdentity: o.modelIdentity, computeDtype: o.computeDtype, files: o.files, train, positionSeed, ridge };
}

export function lensKey(s: LensSettings): string {
  // Field order fixed here, so the key does not depend on how the settings object was assembled.
  const t = s.train;
  const determining = {
    version: s.version,
    model: s.modelIdentity,
    dtype: s.computeDtype,
    files: s.files,
    train: [t.poolStart, t.poolEnd, t.shuffleSeed, t.start, t.end, t.filter.maxWords ?? null, t.filter.maxChars ?? null, t.pileSetName ?? null, t.bos],
    positionSeed: s.positionSeed,
    ridge: s.ridge,
  };
  return createHash('sha256').update('logitscope-tuned-lens\0').update(JSON.stringify(determining)).digest('hex');
}

/** One line naming a lens, for `runs show`, exports and the UI. */
export function describeLens(r: LensRecord): string {
  const t = r.train;
  const pool = `records ${t.poolStart}..${t.poolEnd - 1}${t.shuffleSeed === null ? ' in file order' : ` shuffled (seed ${t.shuffleSeed})`}`;
  return `affine tuned lens ${r.key.slice(0, 12)}: fitted on items ${t.start}..${t.end - 1} of ${pool} (${r.examples} examples), position seed ${r.positionSeed}, ridge ${r.ridge}·tr(Σ)/d, v${r.version}`;
}

/** A fitted lens's folder: beside the model's graphs and converted weights (engine cacheDir). */
export function lensDir(modelCacheDir: string, key: string): string {
  return path.join(modelCacheDir, 'tuned-lens', key);
}

/** lens.json: the record plus how the fit went. */
export interface LensFile extends LensRecord {
  nLayers: number;
  dModel: number;
  /** Per layer index (0 = embeddings .. nLayers-1 = last block, identity): the absolute ridge and the fit's R². */
  layers: { layer: number; lambda: number; r2: number }[];
  timings: { collectSeconds: number; accumulateSeconds: number; solveSeconds: number };
  /** sha256 of weights.f32, checked whenever the lens is opened. */
  weightsSha256: string;
  /** Fit error and precision@1 per layer on held-out train examples (check.ts). */
  check: LensCheck;
}

/**
 * The lens in `dir`, checked: its weights' size, their content against the hash recorded at fit
 * time (memoised by path, size, mtime and inode, as a checkpoint's identity is), and its recorded
 * held-out check. null when there is none; `cache_corrupt` naming the file when it is damaged
 * (ensureTunedLens then fits it again).
 */
export function readLensFile(dir: string): LensFile | null {
  const meta = path.join(dir, LENS_META);
  const weights = path.join(dir, LENS_WEIGHTS);
  if (!fs.existsSync(meta) || !fs.existsSync(weights)) return null;
  const refit = 'it is refused and will be fitted again';
  let file: LensFile;
  try {
    file = JSON.parse(fs.readFileSync(meta, 'utf8')) as LensFile;
  } catch (e) {
    throw new LogitscopeError('cache_corrupt', `the tuned lens's ${LENS_META} cannot be read (${(e as Error).message}); ${refit}`, meta);
  }
  const expected = 4 * (file.nLayers + 1) * file.dModel * (file.dModel + 1);
  if (fs.statSync(weights).size !== expected) {
    throw new LogitscopeError('cache_corrupt', `the tuned lens's weights have ${fs.statSync(weights).size} bytes, expected ${expected}; ${refit}`, weights);
  }
  // The index of content hashes lives in the model's cache folder, two levels up (lensDir).
  verifyHashes([{ file: weights, hash: file.weightsSha256 }], path.resolve(dir, '..', '..'), 'a tuned lens');
  const problem = checkProblem(file.check, file.nLayers);
  if (problem) throw new LogitscopeError('cache_corrupt', `the tuned lens fails its own check: ${problem}; ${refit}`, meta);
  return file;
}

/** Every lens fitted for a model (in its cache folder), the most recent first. */
export function listLenses(modelCacheDir: string): { dir: string; file: LensFile; mtimeMs: number }[] {
  const root = path.join(modelCacheDir, 'tuned-lens');
  if (!fs.existsSync(root)) return [];
  const out: { dir: string; file: LensFile; mtimeMs: number }[] = [];
  for (const name of fs.readdirSync(root)) {
    const dir = path.join(root, name);
    try {
      const file = readLensFile(dir);
      if (file && file.version === TUNED_LENS_VERSION) out.push({ dir, file, mtimeMs: fs.statSync(path.join(dir, LENS_META)).mtimeMs });
    } catch {
      // A damaged lens is skipped here; fitting the same settings again replaces it.
    }
  }
  return out.sort((a, b) => b.mtimeMs - a.mtimeMs);
}

/** The record a run stores, from a lens file. */
export function lensRecordOf(f: LensFile): LensRecord {
  const { version, modelIdentity, computeDtype, files, train, positionSeed, ridge, key, examples, weightsSha256 } = f;
  return { version, modelIdentity, computeDtype, files, train, positionSeed, ridge, key, examples, contentHash: weightsSha256 };
}
