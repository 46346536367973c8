import type { DeviceKind } from './device.ts';
import type { TextFilter } from './text-filter.ts';
import type { TechniqueSpec } from './techniques.ts';

export type PresetName = 'logitscope' | 'patchscopes';
export type Strategy = 'fast' | 'naive';

/**
 * Every setting that decides which examples a sweep runs on. A preset fills them all in
 * (PROTOCOL.md's table); each can be overridden, and the run records what was actually used.
 */
export interface ProtocolSettings {
  preset: PresetName;
  /** The pool: records [poolStart, poolEnd) of the files, in file order, before filtering. */
  poolStart: number;
  poolEnd: number;
  pileSetName?: string;
  filter: TextFilter;
  /** Shuffle the filtered pool with this seed; null keeps file order. */
  shuffleSeed: number | null;
  /** The evaluation slice: items [evalStart, evalEnd) of the filtered (and shuffled) pool; null = to the end. */
  evalStart: number;
  evalEnd: number | null;
  /** At most this many examples from the evaluation slice. */
  limit?: number;
  /**
   * Prepend the config's BOS (GPT-J's <|endoftext|>: TransformerLens's default, used by the seed)
   * to source and target prompts, and let it be a sampled position. A tokenizer that always adds
   * its own BOS (Llama, Gemma) keeps it either way; then this only decides the sampling (engine/bos.ts).
   */
  bos: boolean;
  /** Seeds the one position drawn per example, shared by every technique and layer. */
  positionSeed: number;
}

export interface SweepSpec {
  modelDir: string;
  device: DeviceKind;
  files: string[];
  protocol: ProtocolSettings;
  techniques: TechniqueSpec[];
  /** Source layers (0..nLayers-1; -1 = embeddings); null = every layer 0..nLayers-1. */
  layers: number[] | null;
  /** Top-k kept per technique and layer for the inspector. */
  k: number;
  strategy: Strategy;
  /**
   * Which token each example follows besides the reference: 'reference' (the default; its exact
   * probability and rank are already every row's `surprisal` and `rank`), or 'record': each
   * record's own `track` field, one token, whose exact log-probability and rank every row then
   * also stores (docs/PROTOCOL.md "Tracked tokens"). Absent means 'reference'.
   */
  track?: TrackChoice;
}

export type TrackChoice = 'reference' | 'record';

/** One example of a sweep: a dataset record, its tokens as fed and the drawn position. */
export interface SweepExample {
  /** The record's index in the files (DataRecord.index); with the tokens it identifies the example. */
  recordIndex: number;
  source?: string;
  text: string;
  tokens: number[];
  position: number;
  /** The record's `track` field as read (data/records.ts), before sweep/track.ts resolves it. */
  trackGiven?: string | number;
  /** With SweepSpec.track 'record': the token id every row of this example follows. */
  track?: number;
}

/**
 * Per technique and layer, over the n examples done so far: each metric's mean with its 95%
 * interval, Wilson score for precision@1 and Student t (n − 1 degrees of freedom) for the surprisals.
 */
export interface LayerSummary {
  technique: string;
  layer: number;
  n: number;
  precision: Interval;
  surprisal: Interval;
  surprisalPaper: Interval;
  /** The per-row measures' means (Student t) over the rows that carry them; null when none does (rows stored before they existed). */
  measures: MeasureSummary | null;
  /** The followed record tokens' means (Student t) over the rows that follow one (track 'record'); null when none does. */
  tracked: TrackedSummary | null;
}

/** Means over the n rows that follow a record token (docs/PROTOCOL.md "Tracked tokens"). */
export interface TrackedSummary {
  n: number;
  /** −ln p_technique(tracked token), nats: the seed's surprisal, of the example's own token instead of the reference. */
  surprisal: Interval;
  /** Its 0-based rank (ids with a strictly greater logit). */
  rank: Interval;
}

/** Means of the per-row measures (docs/PROTOCOL.md) over the n rows measured, which may be fewer than the layer's. */
export interface MeasureSummary {
  n: number;
  kl: Interval;
  rank: Interval;
  entropy: Interval;
}

/**
 * B minus A per technique and layer (docs/PROTOCOL.md, "Comparing techniques and runs").
 * Paired (two techniques of one run, or two runs over the n examples both computed:
 * store/difference.ts): each metric's mean per-example difference with its paired Student t 95%
 * interval, precision's too (a difference of −1, 0 or 1 per example is not one proportion, so
 * Wilson does not apply), and McNemar's exact test on precision@1. Unpaired (two runs sharing no
 * example: store/unpaired.ts): Newcombe's interval for precision, Welch's for the surprisals, each
 * side's n in nA and nB, and n their sum.
 */
export interface LayerDifference {
  technique: string;
  layer: number;
  n: number;
  precision: Interval;
  surprisal: Interval;
  surprisalPaper: Interval;
  /** Paired differences of the per-row measures are not computed (yet): null, as a summary row whose rows were not measured. */
  measures: null;
  /** Nor of the tracked tokens': null. */
  tracked: null;
  mcnemar?: McNemar;
  nA?: number;
  nB?: number;
}

/** McNemar's exact test for paired right/wrong outcomes (sweep/significance.ts). */
export interface McNemar {
  /** Examples right under A only, and under B only: the discordant pairs, all the test looks at. */
  onlyA: number;
  onlyB: number;
  /** Exact two-sided p-value: 2·P(X ≤ min(onlyA, onlyB)), X ~ Binomial(onlyA + onlyB, 1/2), capped at 1; 1 with no discordant pair. */
  pValue: number;
}

/**
 * A mean with a 95% confidence interval. Which interval is said by the type that holds it: a
 * LayerSummary's precision is a Wilson score interval and its surprisals Student t; a
 * LayerDifference's are all paired Student t (sweep/intervals.ts computes both; an unpaired one's
 * are Newcombe's and Welch's, sweep/significance.ts). low and high are
 * null where the interval is undefined: a t interval of one example (nothing to measure the spread
 * by). Null, not NaN, so the value is the same in process, over JSON and through structured clone.
 */
export interface Interval {
  mean: number;
  low: number | null;
  high: number | null;
}
