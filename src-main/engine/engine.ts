import fs from 'node:fs';
import path from 'node:path';
import { defaultCacheDir } from '../app-paths.ts';
import { LogitscopeError } from '../errors.ts';
import { checkCacheRoot } from '../fs-errors.ts';
import { LENS_WEIGHTS } from '../protocol/lens-settings.ts';
import { type ModelConfig, readModelConfig } from './config.ts';
import type { ComputeType } from './graph/layers.ts';
import { type DeviceChoice, type DeviceKind, parseDevice } from '../protocol/device.ts';
import type { PromptTokenizer } from '../protocol/techniques.ts';
import { loadTokenizer, type Tokenizer } from './tokenizer.ts';
import { type BosPlan, bosPlan, promptTokenizer, withBos } from './bos.ts';
import { WorkerClient } from './worker-client.ts';
import { type CheckpointOrigin, checkpointOrigin } from './provenance.ts';
import { residRowAt, type BatchRequest, type BatchResult, type EngineStats, type EngineTimings, type LoadedModel, type Meter, type ModelRows, type SourceItem, type UnembedReply, type WorkerReplies, type WorkerRequests } from './worker-protocol.ts';

export type { BatchRequest, BatchResult, EngineStats, EngineTimings, RowMeasures, SourceItem, TechniqueRows } from './worker-protocol.ts';

export interface EngineLoadOptions {
  modelDir: string;
  /** cpu (the default), cuda (= cuda:0), cuda:N (GPU N) or webgpu: parseDevice (protocol/device.ts) checks it first. */
  device?: string;
  /**
   * The element type the graphs compute in: float32 by default on the CPU, float16 on a GPU. Graph
   * inputs and outputs are fp32 either way; fp16 on the CPU is slower than fp32 (onnxruntime's CPU
   * kernels mostly cast), and is there to check the GPU's numerics on any machine.
   */
  dtype?: ComputeType;
  /** Root of the graph/converted-weight cache; defaults to the platform cache directory. */
  cacheRoot?: string;
  /** Run on the CPU when CUDA was asked for but cannot start. Off by default: no silent fallback. */
  allowCpuFallback?: boolean;
  /**
   * The URL of the module whose openApplySession opens a tuned lens's apply session in the engine's
   * worker thread (lens/local-sessions.ts LENS_SESSIONS_MODULE). Given, not imported, so the engine
   * depends on no layer above it; without one, a batch that applies a tuned lens is refused.
   */
  lensSessions?: string;
}

export interface ModelInfo extends LoadedModel {
  modelDir: string;
  tokenizerSource: string;
  /** The hub repository and commit when the folder is a hub cache snapshot (engine/provenance.ts), else null. */
  origin: CheckpointOrigin | null;
  /** Set when a GPU was asked for, could not start, and the caller allowed the CPU instead. */
  fallbackReason?: string;
}

export interface SourceResult {
  batch: number;
  /** [nLayers+1, batch, dModel]: index 0 is hook_embed, index l+1 is blocks.l.hook_resid_post, at each item's position. */
  resid: Float32Array;
  /** [batch, dVocab]: the model's own logits at each item's position (from the unembedding graph). */
  logits: Float32Array;
}

/**
 * A target prompt whose prefix keys/values the worker has computed and keeps: they never cross to
 * this thread, so a patched run names the prompt, not the tensors.
 */
export interface TargetPrefix {
  /** The whole target prompt as fed (BOS included if used); the last token's residual is the one overwritten. */
  tokens: number[];
}

export type UnembedResult = UnembedReply;

const defaultDtype = (device: DeviceKind): ComputeType => (device === 'cpu' ? 'float32' : 'float16');

/**
 * The engine API: tokenization on this thread, every graph run in the worker. Inputs are checked
 * here, before any compute, so a bad token, position or layer is reported with what is wrong.
 */
export class Engine {
  readonly stats: EngineStats = { sourceRuns: 0, sourceRows: 0, patchedRuns: 0, patchedRows: 0, unembedRuns: 0, unembedRows: 0, naiveRuns: 0, lensRuns: 0, lensRows: 0 };
  /**
   * Milliseconds: inside each graph's runs (`full` = source passes and prefixes, `step` = patched
   * runs), and `host` = everything else of the engine's calls (the worker's JavaScript and the
   * message round trips), `lens` = tuned-lens maps in batches. For benchmarks.
   */
  readonly timings: EngineTimings = { full: 0, step: 0, unembed: 0, lens: 0, host: 0 };
  /**
   * Distinct prompts the source passes have run. stats.sourceRows counts the items read out; items
   * that share a prompt's tokens up to their positions (several positions of one prompt) share a run.
   */
  sourcePrompts = 0;

  private constructor(
    private readonly worker: WorkerClient,
    readonly info: ModelInfo,
    readonly tokenizer: Tokenizer,
  ) {}

  get config(): ModelConfig {
    return this.info.config;
  }

  static async load(opts: EngineLoadOptions): Promise<Engine> {
    const device: DeviceChoice = parseDevice(opts.device ?? 'cpu');
    readModelConfig(opts.modelDir); // a directory that is not a checkpoint of a supported family is reported as such, first
    const tokenizer = loadTokenizer(opts.modelDir);
    const cacheRoot = opts.cacheRoot ?? defaultCacheDir();
    checkCacheRoot(cacheRoot); // a file, or a folder that cannot be written: said before the worker starts
    let worker = new WorkerClient();
    let fallbackReason: string | undefined;
    let loaded: LoadedModel;
    try {
      loaded = await worker.call('load', { modelDir: opts.modelDir, device, cacheRoot, dtype: opts.dtype ?? defaultDtype(device.kind), lensSessions: opts.lensSessions });
    } catch (e) {
      await worker.terminate();
      const unavailable = e instanceof LogitscopeError && e.code === 'device_unavailable';
      if (!(unavailable && opts.allowCpuFallback)) throw e;
      fallbackReason = e.message;
      worker = new WorkerClient();
      try {
        loaded = await worker.call('load', { modelDir: opts.modelDir, device: { kind: 'cpu', index: 0 }, cacheRoot, dtype: opts.dtype ?? defaultDtype('cpu'), lensSessions: opts.lensSessions });
      } catch (e2) {
        await worker.terminate();
        throw e2;
      }
    }
    const engine = new Engine(worker, { ...loaded, modelDir: opts.modelDir, tokenizerSource: tokenizer.source, origin: checkpointOrigin(opts.modelDir), fallbackReason }, tokenizer);
    worker.onMeter = (m) => engine.meter(m);
    return engine;
  }

  async dispose(): Promise<void> {
    await this.worker.terminate();
  }

  /**
   * Where BOS goes for a protocol's (or request's) `bos`: the tokenizer's own BOS always, where it
   * adds one (Llama, Gemma); else the config's bos_token_id when `bos` is set (engine/bos.ts).
   */
  bosPlan(bos: boolean): BosPlan {
    return bosPlan(this.tokenizer, this.config.bosTokenId, bos);
  }

  /** Token ids for `text`, with BOS in front as bosPlan says. */
  tokenize(text: string, opts: { bos: boolean }): number[] {
    const tokens = withBos(this.bosPlan(opts.bos), this.tokenizer.encode(text));
    if (tokens.length === 0) throw new LogitscopeError('prompt_empty', 'the text tokenizes to no tokens', 'text');
    this.checkTokens(tokens, 'text');
    return tokens;
  }

  /** Prompts under a protocol's (or request's) `bos`: how target prompts are tokenized (resolveTechniques). */
  promptTokenizer(bos: boolean): PromptTokenizer {
    // The engine's tokenize, and checkTokens here, also check the ids against the head and n_positions.
    const base = promptTokenizer(this.tokenizer, this.bosPlan(bos));
    const oneToken = (text: string) => {
      const tokens = base.oneToken(text);
      if (tokens) this.checkTokens(tokens, 'target prompt');
      return tokens;
    };
    return { ...base, tokenize: (text) => this.tokenize(text, { bos }), oneToken };
  }

  detokenize(ids: number[]): string {
    return this.tokenizer.decode(ids);
  }

  /** One batched pass over the source prompts: every layer's residual and the model's logits, only at each item's position. */
  async sourcePass(items: SourceItem[]): Promise<SourceResult> {
    if (items.length === 0) throw new LogitscopeError('argument_invalid', 'no source prompts given', 'items');
    items.forEach((it, i) => this.checkItem(it, `items[${i}]`));
    const out = await this.call('source', { items, names: items.map((_, i) => `items[${i}]`) });
    return { batch: items.length, ...out };
  }

  /** Has the worker compute (once) and keep the keys/values of every position of `tokens` but the last. */
  async prefix(tokens: number[]): Promise<TargetPrefix> {
    if (tokens.length === 0) throw new LogitscopeError('prompt_empty', 'the target prompt has no tokens', 'target prompt');
    this.checkTokens(tokens, 'target prompt');
    await this.call('prefix', { tokens });
    return { tokens };
  }

  /**
   * The fast patched run: row r's vector replaces the target prompt's last-position residual at the
   * output of block injectLayers[r] (-1 = the embeddings), and runs through the blocks above it.
   * Returns the final residual (before ln_f) of every row, [rows, dModel], in the given order.
   */
  async patched(opts: { prefix: TargetPrefix; vectors: Float32Array; injectLayers: number[] }): Promise<Float32Array> {
    const { dModel } = this.config;
    const rows = opts.injectLayers.length;
    if (opts.vectors.length !== rows * dModel) {
      throw new LogitscopeError('argument_invalid', `expected ${rows} vectors of ${dModel} values, got ${opts.vectors.length} values`, 'vectors');
    }
    opts.injectLayers.forEach((l, i) => assertLayer(this.config, l, `injectLayers[${i}]`));
    const out = await this.call('patched', { prefixTokens: opts.prefix.tokens, vectors: opts.vectors, injectLayers: opts.injectLayers });
    return out.final;
  }

  /** The naive patched run, kept to verify the fast one: the whole target prompt through every block, one row. */
  async naivePatched(opts: { targetTokens: number[]; layer: number; vector: Float32Array }): Promise<Float32Array> {
    this.checkTokens(opts.targetTokens, 'target prompt');
    assertLayer(this.config, opts.layer, 'layer');
    return (await this.call('naive', opts)).final;
  }

  /**
   * ln_f + lm_head on residual rows [rows, dModel]: top-k, each row's reference log-probability and
   * measures (the reference's rank, entropy, and with `model` the KL from the model's own
   * distribution; NaN without), and with `logits` the rows' whole logits. A row whose logits are
   * not finite is a numerics_nonfinite error.
   */
  async unembed(opts: { resid: Float32Array; referenceIds: number[]; k: number; logits?: boolean; model?: ModelRows }): Promise<UnembedResult> {
    const { dModel, dVocab } = this.config;
    const rows = opts.referenceIds.length;
    if (opts.resid.length !== rows * dModel) {
      throw new LogitscopeError('argument_invalid', `expected ${rows} residual rows of ${dModel} values, got ${opts.resid.length} values`, 'resid');
    }
    this.checkK(opts.k);
    this.checkIds(opts.referenceIds, 'referenceIds');
    if (opts.model) {
      const examples = opts.model.logprobs.length / dVocab;
      if (!Number.isInteger(examples) || opts.model.rows.length !== rows || opts.model.rows.some((r) => !(Number.isInteger(r) && r >= 0 && r < examples))) {
        throw new LogitscopeError('argument_invalid', `model: expected [examples, ${dVocab}] log-probabilities and one example index per row (${rows})`, 'model');
      }
    }
    return this.call('unembed', { ...opts, logits: opts.logits ?? false, names: opts.referenceIds.map((_, i) => `row ${i}`) });
  }

  /**
   * A whole batch in one worker call: source pass, patched runs, unembedding. Residuals stay in the
   * worker; what comes back is what the results cache stores.
   */
  async extractBatch(req: BatchRequest): Promise<BatchResult> {
    if (req.items.length === 0) throw new LogitscopeError('argument_invalid', 'no source prompts given', 'items');
    req.items.forEach((it, i) => this.checkItem(it, req.names[i] ?? `items[${i}]`));
    this.checkK(req.k);
    if (req.track !== undefined) {
      if (req.track.length !== req.items.length) throw new LogitscopeError('argument_invalid', `track: one token id per source prompt (${req.items.length}), got ${req.track.length}`, 'track');
      this.checkIds(req.track, 'track');
    }
    req.techniques.forEach((t) => {
      if (t.prefixTokens) this.checkTokens(t.prefixTokens, `technique ${t.id}`);
      t.sourceLayer.forEach((l) => assertLayer(this.config, l, `technique ${t.id}`));
      if (t.prefixTokens) t.injectLayer.forEach((l) => assertLayer(this.config, l, `technique ${t.id}`));
      if (t.example.some((b) => !(Number.isInteger(b) && b >= 0 && b < req.items.length))) {
        throw new LogitscopeError('argument_invalid', `technique ${t.id} names an example outside the batch`, 'techniques');
      }
      // The folder lens/apply.ts lensFolder checked; a folder without weights is refused before the source pass.
      if (t.lens && !fs.existsSync(path.join(t.lens.dir, LENS_WEIGHTS))) {
        throw new LogitscopeError('cache_corrupt', `technique ${t.id}: the tuned lens folder ${t.lens.dir} has no ${LENS_WEIGHTS}; delete it to fit the lens again`, t.lens.dir);
      }
    });
    return this.call('batch', req);
  }

  private async call<K extends keyof WorkerRequests>(op: K, payload: WorkerRequests[K]): Promise<WorkerReplies[K]> {
    const inGraphs = () => this.timings.full + this.timings.step + this.timings.unembed + this.timings.lens;
    const before = inGraphs();
    const started = performance.now();
    try {
      return await this.worker.call(op, payload);
    } finally {
      // Whatever of the call's wall time was not inside a graph run (the meter has arrived by now).
      this.timings.host += performance.now() - started - (inGraphs() - before);
    }
  }

  private meter(m: Meter): void {
    Object.assign(this.stats, m.stats);
    this.sourcePrompts = m.sourcePrompts;
    this.timings.full = m.timings.full;
    this.timings.step = m.timings.step;
    this.timings.unembed = m.timings.unembed;
    this.timings.lens = m.timings.lens;
  }

  private checkK(k: number): void {
    const { dVocab } = this.config;
    if (!Number.isInteger(k) || k < 1 || k > dVocab) {
      throw new LogitscopeError('argument_invalid', `top-k must be an integer from 1 to ${dVocab}, got ${k}`, 'k');
    }
  }

  private checkTokens(tokens: number[], what: string): void {
    const { nCtx } = this.config;
    if (tokens.length > nCtx) {
      throw new LogitscopeError('prompt_too_long', `${tokens.length} tokens is more than the model's n_positions (${nCtx})`, what);
    }
    this.checkIds(tokens, what);
  }

  private checkIds(tokens: number[], what: string): void {
    const { dVocab } = this.config;
    const bad = tokens.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= dVocab);
    if (bad >= 0) throw new LogitscopeError('token_out_of_range', `token id ${tokens[bad]} at index ${bad} is outside 0..${dVocab - 1}`, what);
  }

  private checkItem(it: SourceItem, what: string): void {
    if (it.tokens.length === 0) throw new LogitscopeError('prompt_empty', 'the prompt has no tokens', what);
    this.checkTokens(it.tokens, what);
    if (!Number.isInteger(it.position) || it.position < 0 || it.position >= it.tokens.length) {
      throw new LogitscopeError('position_out_of_range', `position ${it.position} is outside the prompt (0..${it.tokens.length - 1})`, what);
    }
  }
}

/**
 * An internal invariant, not a user's error: every request is checked against its model before any
 * work (api/model-check.ts), so a layer out of range here is a bug of the caller (a plan built
 * wrong, a script driving the engine directly). It keeps its code, so such a caller still gets a
 * coded error rather than a crash in the graph.
 */
export function assertLayer(config: { nLayers: number }, layer: number, what: string): void {
  const { nLayers } = config;
  if (!Number.isInteger(layer) || layer < -1 || layer >= nLayers) {
    throw new LogitscopeError('layer_out_of_range', `layer ${layer} is outside -1..${nLayers - 1} (-1 = embeddings)`, what);
  }
}

/** Row `b` of layer `layer` (-1 = embeddings) in a SourceResult. */
export function residRow(r: SourceResult, layer: number, b: number, dModel: number): Float32Array {
  return residRowAt(r.resid, { batch: r.batch, dModel }, layer, b);
}
