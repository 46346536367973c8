/**
 * The review side of the API's replies: the summary row, the inspector's examples, the
 * comparisons and their tests, commitment layers, reference curves and per-source curves. Declared
 * here so that contract.ts stays the map from request to reply; types only, like contract.ts (the
 * renderer imports both).
 */
import type { FingerprintCheck } from '../data/fingerprint.ts';
import type { ReferenceCurve } from '../data/reference-curve.ts';
import type { LayerDifference } from '../protocol/spec.ts';
import type { z } from 'zod';
import type { layerSummarySchema } from './schemas.ts';

/**
 * A LayerSummary (protocol/spec.ts) as it crosses the boundary: per technique and layer, n and the
 * means with their 95% intervals (an unbounded bound is null, in process and on every front alike).
 */
export type SummaryRow = z.output<typeof layerSummarySchema>;

/** One example for the inspector: its text as tokens, the position, and every cell's top-k. */
export interface ExampleView {
  ordinal: number;
  recordIndex: number;
  source?: string;
  tokens: { id: number; text: string }[];
  position: number;
  reference: { id: number; text: string };
  /** Token ids from here up are padding rows of the head (the tokenizer's size): marked where they show. */
  paddingFrom: number;
  cells: {
    technique: string;
    layer: number;
    top1: number;
    correct: boolean;
    surprisal: number;
    surprisalPaper: number;
    topK: { id: number; text: string; prob: number }[];
    /** The per-row measures (docs/PROTOCOL.md): nats, rank of the reference (0 = top-1), nats; null = not measured (a row stored before they existed). */
    kl: number | null;
    rank: number | null;
    entropy: number | null;
    /** With a followed token (ExampleView.follow): its exact probability and rank here (1 = the cell's top-1), in or out of the top-k. */
    followProb?: number;
    followRank?: number;
  }[];
  /** The token this example follows (its record's `track` token, a sweep with track 'record'); absent: none. */
  follow?: { id: number; text: string };
}

/**
 * One stored example computed again with a token followed: per cell of the run (its techniques ×
 * layers), that token's exact probability and rank over the whole vocabulary, in or out of the
 * stored top-k. `rank` counts from 1 (the cell's top-1), as Extract's followRank: 1 + the ids with
 * a strictly greater logit.
 */
export interface FollowView {
  ordinal: number;
  token: { id: number; text: string };
  cells: { technique: string; layer: number; prob: number; rank: number }[];
}

/** One example as the inspector's finder lists it: the chosen cell's numbers, and its technique at every layer. */
export interface ExampleRow {
  ordinal: number;
  recordIndex: number;
  source?: string;
  reference: { id: number; text: string };
  top1: { id: number; text: string };
  correct: boolean;
  /** Nats, both conventions (PROTOCOL.md). */
  surprisal: number;
  surprisalPaper: number;
  /** The heatmap's row: the cell's technique at each of the run's layers. */
  layers: { layer: number; correct: boolean; surprisal: number }[];
  /** Where the cell's technique commits for this example (PROTOCOL.md, "Where a prediction commits"); null: never. */
  commitsAt: number | null;
}

export interface ExampleListView {
  /** The technique × layer the filter and each row's numbers refer to. */
  cell: { technique: string; layer: number };
  /** Examples that match, over every page. */
  total: number;
  offset: number;
  rows: ExampleRow[];
}

/**
 * B minus A at one technique and layer: the mean difference with its 95% interval (bounds null
 * where undefined). Paired: n pairs, and McNemar's exact test on precision@1 (the examples right
 * under A only and under B only). Unpaired: each side's n (nA, nB), and n is their sum.
 */
export type DifferenceRow = SummaryRow & Pick<LayerDifference, 'mcnemar' | 'nA' | 'nB'>;

/**
 * How a comparison was made (PROTOCOL.md, "Comparing techniques and runs"): two techniques of one
 * run over its examples, two runs paired over their shared examples, or two runs with no shared
 * example as independent samples.
 */
export type DifferenceTest = 'within-run' | 'paired' | 'unpaired';

export interface DifferenceView {
  a: string;
  b: string;
  /** Within one run: the two techniques compared (b − a). */
  techniques?: { a: string; b: string };
  test: DifferenceTest;
  /** Why this test, in a sentence for the view and the CLI. */
  why: string;
  /** Examples both runs list (same tokens and position); within one run, its examples. */
  sharedExamples: number;
  rows: DifferenceRow[];
  /** Paired runs: per technique over every shared example and layer: max |b − a| of each surprisal, and rows whose top-1 differs. */
  largest: { technique: string; rows: number; surprisal: number; surprisalPaper: number; top1Differs: number }[];
  /** The intervals' and tests' formulas. */
  method: string;
}

/** Per technique of a run: where its examples' predictions commit (PROTOCOL.md, "Where a prediction commits"). */
export interface CommitmentView {
  runId: string;
  /** The run's swept layers: commitment layers are always among them. */
  layers: number[];
  techniques: {
    technique: string;
    /** Examples with stored results. */
    n: number;
    /** Examples per commitment layer, every swept layer in order (zeros included). */
    histogram: { layer: number; count: number }[];
    /** Examples wrong at the last swept layer. */
    never: number;
    /** Median commitment layer of the committing examples, with its order-statistic 95% interval (bounds null under 6 examples) and exact coverage. */
    median: { mean: number | null; low: number | null; high: number | null; coverage: number | null };
  }[];
  method: string;
}

/** A reference table's rows and where it came from (data/reference-curve.ts, PROTOCOL.md "Reference curves"). */
export type ReferenceView = ReferenceCurve & { name: string };

export interface ComparisonRow {
  technique: string;
  layer: number;
  a?: SummaryRow;
  b?: SummaryRow;
}

/** A run's curves for one technique, one entry per data source, the most examples first. */
export interface BySourceView {
  technique: string;
  /** Examples whose record named no source are grouped as "(none)". */
  sources: { source: string; n: number; summary: SummaryRow[] }[];
}
