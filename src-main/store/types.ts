import type { SerializedError } from '../errors.ts';
import type { Readout } from '../sweep/readout.ts';
import type { LayerSummary, ProtocolSettings, Strategy, SweepSpec } from '../protocol/spec.ts';
import type { ResolvedTechnique } from '../protocol/techniques.ts';

/** The store's public shapes: what goes in when a run starts and what review reads back. */

/**
 * 'interrupted' is never stored: it is a 'running' run whose owner is gone (its process died, or
 * its heartbeat stopped; run-rows.ts runStatus). Such a run can be resumed or deleted.
 */
export type RunStatus = 'running' | 'interrupted' | 'completed' | 'cancelled' | 'failed';

/** The process that computes (or last computed) a run. */
export interface RunOwner {
  pid: number;
  host: string;
  /** When it last showed it was alive (ISO 8601); null once it let go of the run (the store closed). */
  heartbeatAt: string | null;
}

/** Everything recorded about a run when it starts. */
export interface NewRun {
  /** Defaults to a random UUID. */
  id?: string;
  name?: string;
  model: {
    /** keys.ts modelKey: the part of the model that determines its numbers (the cache key). */
    key: string;
    path: string;
    /** describeModel(engine.info): identity, format, dtypes, device, config. */
    info: Record<string, unknown>;
  };
  /** The dataset files, in the order they were read. */
  files: string[];
  /** How the dataset was read: records scanned, filtered out and skipped (malformed lines...), by reason. */
  datasetStats?: Record<string, unknown>;
  /** Every setting actually used, preset defaults filled in (position seed included). */
  protocol: ProtocolSettings;
  techniques: ResolvedTechnique[];
  layers: number[];
  k: number;
  strategy: Strategy;
  /** The app's version (and commit, when known), to tell results of different code apart. */
  codeVersion: string;
  /** The sweep as asked, when there was one, to re-run it. */
  spec?: SweepSpec;
  /** An estimate (e.g. the protocol's limit) until setRunExamples records the examples drawn. */
  examplesPlanned?: number;
  /**
   * The run reads only rows it produced itself (a recompute, a naive verification, a merge), never
   * another run's; by default it reads the oldest stored row of each cell (generations.ts).
   */
  ownsRows?: boolean;
}

/** One example of a run as the sweep hands it over; the store computes its key. */
export interface RunExampleInput {
  /** 0.. in the run's example order. */
  ordinal: number;
  recordIndex: number;
  source?: string;
  text?: string;
  tokens: number[];
  position: number;
  /** The token every row of this example follows (a sweep with track 'record'); absent: none. */
  track?: number;
}

export interface RunExample extends RunExampleInput {
  exampleKey: string;
  /** Every technique and layer of the run is stored for it. */
  done: boolean;
}

/**
 * One stored result: a readout (sweep/readout.ts) keyed by what determines it, its example's and
 * technique's keys (keys.ts) in place of the run's technique id. k = topK.ids.length; probabilities
 * come back rounded to float32. Entropy is never stored.
 */
export interface LayerResultRow extends Omit<Readout, 'technique'> {
  exampleKey: string;
  techniqueKey: string;
}

export interface LookupQuery {
  modelKey: string;
  exampleKeys: readonly string[];
  techniqueKeys: readonly string[];
  layers: readonly number[];
  /** Rows stored with fewer top-k entries are misses; longer ones are cut to k. */
  k: number;
  /** Only rows this run produced (a run that owns its rows); otherwise any run's, the oldest first. */
  ownedBy?: string;
}

export interface RunFilter {
  /** keys.ts modelKey. */
  modelKey?: string;
  modelPath?: string;
  /** A dataset file's path, or its file name alone. */
  dataset?: string;
  status?: RunStatus;
}

export interface RunListItem {
  id: string;
  name: string | null;
  status: RunStatus;
  createdAt: string;
  updatedAt: string;
  modelKey: string;
  modelPath: string;
  files: string[];
  /** Technique ids in the run's order. */
  techniques: string[];
  layers: number[];
  k: number;
  examplesPlanned: number | null;
  examplesDone: number;
  /** Free text and labels the researcher added; they do not affect the numbers. */
  notes: string | null;
  tags: string[];
}

/** What `updateRun` changes; a missing field is left as it is, a null name or notes clears it. */
export interface RunEdit {
  name?: string | null;
  notes?: string | null;
  tags?: string[];
}

export interface RunDetail extends RunListItem {
  model: Record<string, unknown>;
  /** The files and, when recorded, how they were read (scan, filter and skip counts). */
  dataset: { files: string[] } & Record<string, unknown>;
  protocol: ProtocolSettings;
  spec: SweepSpec | null;
  resolvedTechniques: ResolvedTechnique[];
  strategy: Strategy;
  codeVersion: string;
  /** Milliseconds per stage, as the sweep reported them. */
  timings: Record<string, number>;
  error: SerializedError | null;
  /** null for runs recorded before owners were (schema version 1). */
  owner: RunOwner | null;
  /** It reads only the rows it computed (or merged) itself: a recompute or merged run (NewRun.ownsRows). */
  ownsRows: boolean;
}

export interface RunEnd {
  status: Exclude<RunStatus, 'running' | 'interrupted'>;
  timings?: Record<string, number>;
  error?: SerializedError;
}

/** One technique and layer of two runs side by side; a side is missing when that run lacks it. */
export interface LayerComparison {
  technique: string;
  layer: number;
  a?: LayerSummary;
  b?: LayerSummary;
  /** b's mean minus a's, when both runs have this technique and layer. */
  diff?: { precision: number; surprisal: number; surprisalPaper: number };
}
