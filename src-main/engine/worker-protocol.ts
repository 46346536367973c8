import type { SerializedError } from '../errors.ts';
import type { ModelConfig } from './config.ts';
import type { ComputeType } from './graph/layers.ts';
import type { DeviceChoice, DeviceKind } from '../protocol/device.ts';
import { residHook, residIndex } from '../protocol/hooks.ts';
import type { RowMeasures } from '../protocol/results.ts';
import type { WeightDtype } from './tensor-ref.ts';

/**
 * One source prompt and the position read out. Tokens after the position are never run, and items
 * whose tokens agree up to their positions (several positions of one prompt) share one run.
 */
export interface SourceItem {
  tokens: number[];
  position: number;
}

/** The rows one technique asks of a batch: row r reads example[r] at sourceLayer[r] (-1 = embeddings). */
export interface TechniqueRows {
  /** Names the technique in error messages. */
  id: string;
  /** The target prompt for a patchscope (patched at its last position); null for the logit lens. */
  prefixTokens: number[] | null;
  example: number[];
  sourceLayer: number[];
  /** Where each row enters the target prompt (patchscopes only). */
  injectLayer: number[];
  /**
   * A tuned lens (lens/lens.ts): the folder of its checked lens.json and weights.f32. Each row's
   * vector is mapped by its source layer's affine map (in the worker, on the engine's device)
   * before the unembedding; rows of the last layer pass unchanged (its map is the identity).
   */
  lens?: { dir: string } | null;
}

/** Everything a batch computes, from source pass to unembedding, in one worker call. */
export interface BatchRequest {
  items: SourceItem[];
  /** Names each example in error messages (e.g. "example 17 (position 5)"). */
  names: string[];
  techniques: TechniqueRows[];
  k: number;
  /** Rows per unembedding run: bounds the [rows, dVocab] logits held at once. */
  maxUnembedRows: number;
  /**
   * Also each row's measures (BatchResult.measures: entropy, KL from the model, the reference's
   * rank; docs/PROTOCOL.md). Sweeps and extractions ask for them; off, a batch skips an exp and a
   * few products over every logit of every row (bench/sweep-bench.ts measures the difference).
   */
  measures?: boolean;
  /**
   * Per item, the token id its rows follow (an extraction's pinned or followed token, or a sweep
   * example's record token): BatchResult.tracked gives its exact log-probability and rank in each
   * row, read from the rows' own logits in the same unembedding run.
   */
  track?: number[];
}

/** Only what is stored: rows in request order, technique by technique. */
export interface BatchResult {
  k: number;
  /** [batch] the model's own top-1 at each source position. */
  referenceTop1: Int32Array;
  /** [rows, k] token ids, best first. */
  topkIds: Int32Array;
  /** [rows, k] natural-log probabilities matching topkIds. */
  topkLogprobs: Float32Array;
  /** [rows] log p_technique(reference top-1). */
  referenceLogprob: Float32Array;
  /** Each row's measures, when asked for (BatchRequest.measures). */
  measures?: RowMeasures;
  /** With BatchRequest.track: [rows] its log-probability, and its rank (ids with a strictly greater logit), in each row. */
  tracked?: { logprob: Float32Array; rank: Int32Array };
  /** [rows] log p_model(row's top-1) at the source position (the paper's surprisal, negated). */
  modelLogprobOfTop1: Float32Array;
}

export interface UnembedReply {
  k: number;
  topkIds: Int32Array; // [rows, k]
  topkLogprobs: Float32Array; // [rows, k]
  referenceLogprob: Float32Array; // [rows]
  /** Each row's measures; `kl` is NaN for every row when no model rows were given. */
  measures: RowMeasures;
  /** [rows, dVocab], only when asked for. */
  logits?: Float32Array;
}

export type { RowMeasures };

/** The model's distributions a set of unembedded rows is measured against (KL): one per example, and which one each row reads. */
export interface ModelRows {
  /** [examples, dVocab] the model's own log-probabilities at each example's source position. */
  logprobs: Float32Array;
  /** [rows] the example each row compares with. */
  rows: number[];
}

/** Messages between the engine (main thread) and the worker that owns the onnxruntime sessions. */
export interface WorkerRequests {
  /** lensSessions: the URL of a LensSessionsModule (engine.ts EngineLoadOptions). */
  load: { modelDir: string; device: DeviceChoice; cacheRoot: string; dtype: ComputeType; lensSessions?: string };
  source: { items: SourceItem[]; names: string[] };
  prefix: { tokens: number[] };
  patched: { prefixTokens: number[]; vectors: Float32Array; injectLayers: number[] };
  naive: { targetTokens: number[]; layer: number; vector: Float32Array };
  unembed: { resid: Float32Array; referenceIds: number[]; k: number; logits: boolean; names: string[]; model?: ModelRows };
  batch: BatchRequest;
}

export interface LoadedModel {
  config: ModelConfig;
  identity: string;
  format: string;
  weightDtype: WeightDtype;
  computeDtype: ComputeType;
  /** The kind of device, which results are keyed by; deviceIndex says which GPU (0 on the CPU). */
  device: DeviceKind;
  deviceIndex: number;
  cacheDir: string;
  weightFolder: string;
  converted: boolean;
  graphsFromCache: boolean;
  /** Milliseconds spent in each loading stage. */
  timings: { checkpoint: number; graphs: number; sessions: number };
}

export interface WorkerReplies {
  load: LoadedModel;
  /** resid [nLayers+1, batch, d], logits [batch, dVocab]. */
  source: { resid: Float32Array; logits: Float32Array };
  prefix: { length: number };
  patched: { final: Float32Array };
  naive: { final: Float32Array };
  unembed: UnembedReply;
  batch: BatchResult;
}

/** How much work the worker has done; tests assert on these instead of on timings. */
export interface EngineStats {
  sourceRuns: number;
  sourceRows: number;
  patchedRuns: number;
  patchedRows: number;
  unembedRuns: number;
  unembedRows: number;
  naiveRuns: number;
  /** Tuned-lens apply runs in batches (one per technique and batch), and the rows they mapped. */
  lensRuns: number;
  lensRows: number;
}

/**
 * Milliseconds, cumulative: inside each graph's session.run (`lens`: tuned-lens maps), and `host` for the worker's own
 * JavaScript (gathers, copies, checks) plus the message round trips, measured by the engine.
 */
export type EngineTimings = Record<'full' | 'step' | 'unembed' | 'lens' | 'host', number>;

/** Sent with every reply: the worker's cumulative counters, and the worker time of this call. */
export interface Meter {
  stats: EngineStats;
  /** Distinct prompts the source passes ran; fewer than stats.sourceRows when items share a prompt. */
  sourcePrompts: number;
  timings: EngineTimings;
  callMs: number;
}

export type WorkerRequest = { [K in keyof WorkerRequests]: { id: number; op: K; payload: WorkerRequests[K] } }[keyof WorkerRequests];
export type WorkerReply = { id: number; ok: true; result: unknown; meter: Meter } | { id: number; ok: false; error: SerializedError; meter: Meter };

/**
 * Row `b` of layer `layer` (-1 = embeddings) in a source pass's resid [nLayers+1, batch, d]: the
 * one place that layout is indexed, for the worker (model-runner.ts) and the main thread (engine.ts).
 */
export function residRowAt(resid: Float32Array, o: { batch: number; dModel: number }, layer: number, b: number): Float32Array {
  const start = (residIndex(residHook(layer)) * o.batch + b) * o.dModel;
  return resid.subarray(start, start + o.dModel);
}
