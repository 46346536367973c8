/**
 * What identifies a fitted tuned lens (lens/lens.ts fits and finds them): its train slice and
 * settings, the record a run keeps of it, what a user may override, and its files' names. Pure, so
 * the technique specs (protocol/techniques.ts) and the engine, which applies a lens inside a batch,
 * name a lens without importing the lens layer.
 */
import type { TextFilter } from './text-filter.ts';

/**
 * The records a lens is trained on: items [start, end) of the pool records [poolStart, poolEnd)
 * of the sweep's files, filtered with the sweep's filter and shuffled with `shuffleSeed` (null =
 * file order), exactly as an evaluation slice is selected (data/selection.ts).
 */
export interface LensTrainSlice {
  poolStart: number;
  poolEnd: number;
  shuffleSeed: number | null;
  start: number;
  end: number;
  filter: TextFilter;
  pileSetName?: string;
  bos: boolean;
}

/** Every setting that decides a fitted lens; with the model it is the cache key. */
export interface LensSettings {
  version: number;
  /** The checkpoint's identity (hash of its bytes) and the dtype the residuals were computed in. */
  modelIdentity: string;
  computeDtype: string;
  /** Dataset files, as given (builtin: names or paths). */
  files: string[];
  train: LensTrainSlice;
  /** Seeds each train example's position (drawn as for evaluation, data/selection.ts drawPosition). */
  positionSeed: number;
  ridge: number;
}

/** What a run records about the lens it used (in the technique's resolved JSON). */
export interface LensRecord extends LensSettings {
  /** sha256 of the settings: names the lens in exports and `runs show`, and its cache folder. */
  key: string;
  /** Train examples actually used (records that tokenize to nothing or are too long are skipped). */
  examples: number;
  /**
   * sha256 of the lens's weights.f32 as fitted. Rows computed through the lens are keyed by it
   * (store/keys.ts), so rows of a lens fitted again never mix with the old one's. Absent in runs
   * recorded before it existed.
   */
  contentHash?: string;
}

/** Overrides a user can give for the tuned lens; the rest come from the sweep's preset. */
export interface LensOverrides {
  train?: Partial<Pick<LensTrainSlice, 'poolStart' | 'poolEnd' | 'shuffleSeed' | 'start' | 'end'>>;
  ridge?: number;
  positionSeed?: number;
}

/** The files of a fitted lens: `lens.json` (lens/lens.ts LensFile) and `weights.f32` (W [L+1, d, d] then b [L+1, d], float32 LE). */
export const LENS_META = 'lens.json';
export const LENS_WEIGHTS = 'weights.f32';
