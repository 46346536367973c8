import { defaultCacheDir } from '../app-paths.ts';
import { LogitscopeError } from '../errors.ts';
import { readGptjConfig, type GptjConfig } from './config.ts';
import { decodeHalf, encodeHalf } from './dtype.ts';
import { NO_PATCH_LAYER } from './graph/gptj-graphs.ts';
import type { Device, HostTensor } from './ort-session.ts';
import { loadTokenizer, type GptjTokenizer } from './tokenizer.ts';
import { WorkerClient } from './worker-client.ts';
import type { LoadedModel } from './worker-protocol.ts';

export interface EngineLoadOptions {
  modelDir: string;
  device?: Device;
  /** Root of the graph/converted-weight cache; defaults to the platform cache directory. */
  cacheRoot?: string;
  /** Run on the CPU when CUDA was asked for but cannot start. Off by default: no silent fallback. */
  allowCpuFallback?: boolean;
}

export interface ModelInfo extends LoadedModel {
  modelDir: string;
  tokenizerSource: string;
  /** Set when CUDA was asked for, could not start, and the caller allowed the CPU instead. */
  fallbackReason?: string;
}

/** One source prompt and the position whose residual stream is read at every layer. */
export interface SourceItem {
  tokens: number[];
  position: number;
}

export interface SourceResult {
  batch: number;
  /** [nLayers+1, batch, dModel]: index 0 is hook_embed, index l+1 is blocks.l.hook_resid_post, at each item's position. */
  resid: Float32Array;
  /** [batch, dVocab]: the model's own logits at each item's position. */
  logits: Float32Array;
}

/** The target prompt of a patched run with its prefix keys/values, computed once and reused for every row. */
export interface TargetPrefix {
  /** The whole target prompt as fed (BOS included if used); the last token's residual is the one overwritten. */
  tokens: number[];
  key: HostTensor; // [nLayers, nHeads, prefix, dHead]
  value: HostTensor; // [nLayers, nHeads, prefix, dHead]
}

export interface UnembedResult {
  k: number;
  /** [rows, k] token ids, best first. */
  topkIds: Int32Array;
  /** [rows, k] log-probabilities (natural log), matching topkIds. */
  topkLogprobs: Float32Array;
  /** [rows] log-probability of each row's reference id. */
  referenceLogprob: Float32Array;
}

/** How much work the engine has done; tests assert on these instead of on timings. */
export interface EngineStats {
  sourceRuns: number;
  sourceRows: number;
  patchedRuns: number;
  patchedRows: number;
  unembedRuns: number;
  unembedRows: number;
  naiveRuns: number;
}

/**
 * The engine API: tokenization on this thread, every graph run in the worker. Inputs are checked
 * here, before any compute, so a bad token, position or layer is reported with what is wrong.
 */
export class Engine {
  readonly stats: EngineStats = { sourceRuns: 0, sourceRows: 0, patchedRuns: 0, patchedRows: 0, unembedRuns: 0, unembedRows: 0, naiveRuns: 0 };
  /** Milliseconds spent waiting for each graph (round trip to the worker included), for benchmarks. */
  readonly timings: Record<'full' | 'step' | 'unembed', number> = { full: 0, step: 0, unembed: 0 };

  private constructor(
    private readonly worker: WorkerClient,
    readonly info: ModelInfo,
    readonly tokenizer: GptjTokenizer,
  ) {}

  get config(): GptjConfig {
    return this.info.config;
  }

  static async load(opts: EngineLoadOptions): Promise<Engine> {
    readGptjConfig(opts.modelDir); // a directory that is not a GPT-J checkpoint is reported as such, first
    const tokenizer = loadTokenizer(opts.modelDir);
    const cacheRoot = opts.cacheRoot ?? defaultCacheDir();
    const device = opts.device ?? 'cpu';
    let worker = new WorkerClient();
    let fallbackReason: string | undefined;
    let loaded: LoadedModel;
    try {
      loaded = await worker.call('load', { modelDir: opts.modelDir, device, cacheRoot });
    } catch (e) {
      await worker.terminate();
      const unavailable = e instanceof LogitscopeError && e.code === 'device_unavailable';
      if (!(unavailable && opts.allowCpuFallback)) throw e;
      fallbackReason = e.message;
      worker = new WorkerClient();
      try {
        loaded = await worker.call('load', { modelDir: opts.modelDir, device: 'cpu', cacheRoot });
      } catch (e2) {
        await worker.terminate();
        throw e2;
      }
    }
    return new Engine(worker, { ...loaded, modelDir: opts.modelDir, tokenizerSource: tokenizer.source, fallbackReason }, tokenizer);
  }

  async dispose(): Promise<void> {
    await this.worker.terminate();
  }

  /** Token ids for `text`, with `<|endoftext|>` (the config's bos_token_id) prepended when `bos` is set. */
  tokenize(text: string, opts: { bos: boolean }): number[] {
    const ids = this.tokenizer.encode(text);
    const tokens = opts.bos ? [this.config.bosTokenId, ...ids] : ids;
    if (tokens.length === 0) throw new LogitscopeError('prompt_empty', 'the text tokenizes to no tokens', 'text');
    this.checkTokens(tokens, 'text');
    return tokens;
  }

  detokenize(ids: number[]): string {
    return this.tokenizer.decode(ids);
  }

  /** One batched pass over the source prompts: every layer's residual and the final logits, only at each item's position. */
  async sourcePass(items: SourceItem[]): Promise<SourceResult> {
    if (items.length === 0) throw new LogitscopeError('argument_invalid', 'no source prompts given', 'items');
    items.forEach((it, i) => this.checkItem(it, `items[${i}]`));
    const { dModel } = this.config;
    // Right-padding is exact here: attention is causal, so positions up to each item's own never see the padding.
    const seq = items.reduce((m, it) => Math.max(m, it.position + 1), 0);
    const ids = new BigInt64Array(items.length * seq);
    items.forEach((it, b) => {
      for (let t = 0; t < seq; t++) ids[b * seq + t] = BigInt(t < it.tokens.length ? it.tokens[t] : 0);
    });
    const out = await this.run('full', {
      input_ids: { type: 'int64', data: ids, dims: [items.length, seq] },
      gather_positions: int64(items.map((it) => it.position)),
      patch_layer: int64([NO_PATCH_LAYER]),
      patch_positions: int64(items.map(() => 0)),
      patch_vectors: this.toCompute(new Float32Array(items.length * dModel), [items.length, dModel]),
    }, ['resid', 'logits']);
    this.stats.sourceRuns++;
    this.stats.sourceRows += items.length;
    return { batch: items.length, resid: this.fromCompute(out.resid), logits: out.logits.data as Float32Array };
  }

  /** Keys/values of every position of `tokens` but the last, which patched runs overwrite. */
  async prefix(tokens: number[]): Promise<TargetPrefix> {
    if (tokens.length === 0) throw new LogitscopeError('prompt_empty', 'the target prompt has no tokens', 'target prompt');
    this.checkTokens(tokens, 'target prompt');
    const { nLayers, nHeads, dHead, dModel } = this.config;
    const p = tokens.length - 1;
    if (p === 0) {
      // A one-token target (no BOS) has no prefix: the patched position attends only to itself.
      const empty = this.toCompute(new Float32Array(0), [nLayers, nHeads, 0, dHead]);
      return { tokens, key: empty, value: empty };
    }
    const out = await this.run('full', {
      input_ids: { type: 'int64', data: BigInt64Array.from(tokens.slice(0, p), BigInt), dims: [1, p] },
      gather_positions: int64([p - 1]),
      patch_layer: int64([NO_PATCH_LAYER]),
      patch_positions: int64([0]),
      patch_vectors: this.toCompute(new Float32Array(dModel), [1, dModel]),
    }, ['present_key', 'present_value']);
    // [nLayers, 1, H, p, dh] -> [nLayers, H, p, dh]: the batch axis of one is dropped, the data is unchanged.
    const drop = (t: HostTensor): HostTensor => ({ ...t, dims: [nLayers, nHeads, p, dHead] }) as HostTensor;
    return { tokens, key: drop(out.present_key), value: drop(out.present_value) };
  }

  /**
   * The fast patched run: row r's vector replaces the target prompt's last-position residual at the
   * output of block injectLayers[r] (-1 = the embeddings), and runs through the blocks above it.
   * Returns the final residual (before ln_f) of every row, [rows, dModel], in the given order.
   */
  async patched(opts: { prefix: TargetPrefix; vectors: Float32Array; injectLayers: number[] }): Promise<Float32Array> {
    const { nLayers, dModel } = this.config;
    const rows = opts.injectLayers.length;
    if (opts.vectors.length !== rows * dModel) {
      throw new LogitscopeError('argument_invalid', `expected ${rows} vectors of ${dModel} values, got ${opts.vectors.length} values`, 'vectors');
    }
    opts.injectLayers.forEach((l, i) => this.checkLayer(l, `injectLayers[${i}]`));
    // The step graph wants rows sorted by inject layer; sort, run, and put the results back in order.
    // Row 0 is a zero sentinel entering at the embeddings: it keeps every block's batch non-empty,
    // because onnxruntime's CPU kernels crash (not throw) on a zero-row LayerNormalization.
    const order = opts.injectLayers.map((l, i) => [l, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const sorted = new Float32Array((rows + 1) * dModel);
    order.forEach(([, i], r) => sorted.set(opts.vectors.subarray(i * dModel, (i + 1) * dModel), (r + 1) * dModel));
    const counts = Array.from({ length: nLayers + 1 }, (_, j) => 1 + opts.injectLayers.filter((l) => l < j).length);
    const out = await this.run('step', {
      patch_vectors: this.toCompute(sorted, [rows + 1, dModel]),
      active_counts: int64(counts),
      position: int64([opts.prefix.tokens.length - 1]),
      prefix_key: opts.prefix.key,
      prefix_value: opts.prefix.value,
    }, ['resid_final']);
    this.stats.patchedRuns++;
    this.stats.patchedRows += rows;
    const final = this.fromCompute(out.resid_final);
    const result = new Float32Array(rows * dModel);
    order.forEach(([, i], r) => result.set(final.subarray((r + 1) * dModel, (r + 2) * dModel), i * dModel));
    return result;
  }

  /** The naive patched run, kept to verify the fast one: the whole target prompt through every block, one row. */
  async naivePatched(opts: { targetTokens: number[]; layer: number; vector: Float32Array }): Promise<Float32Array> {
    const { dModel, nLayers } = this.config;
    this.checkTokens(opts.targetTokens, 'target prompt');
    this.checkLayer(opts.layer, 'layer');
    const last = opts.targetTokens.length - 1;
    const out = await this.run('full', {
      input_ids: { type: 'int64', data: BigInt64Array.from(opts.targetTokens, BigInt), dims: [1, opts.targetTokens.length] },
      gather_positions: int64([last]),
      patch_layer: int64([opts.layer]),
      patch_positions: int64([last]),
      patch_vectors: this.toCompute(opts.vector, [1, dModel]),
    }, ['resid']);
    this.stats.naiveRuns++;
    return this.fromCompute(out.resid).slice(nLayers * dModel, (nLayers + 1) * dModel);
  }

  /** ln_f + lm_head on residual rows [rows, dModel]: top-k and each row's reference log-probability. */
  async unembed(opts: { resid: Float32Array; referenceIds: number[]; k: number }): Promise<UnembedResult> {
    const { dModel, dVocab } = this.config;
    const rows = opts.referenceIds.length;
    if (opts.resid.length !== rows * dModel) {
      throw new LogitscopeError('argument_invalid', `expected ${rows} residual rows of ${dModel} values, got ${opts.resid.length} values`, 'resid');
    }
    if (!Number.isInteger(opts.k) || opts.k < 1 || opts.k > dVocab) {
      throw new LogitscopeError('argument_invalid', `top-k must be an integer from 1 to ${dVocab}, got ${opts.k}`, 'k');
    }
    this.checkIds(opts.referenceIds, 'referenceIds');
    const out = await this.run('unembed', {
      resid: this.toCompute(opts.resid, [rows, dModel]),
      reference_ids: int64(opts.referenceIds),
      k: int64([opts.k]),
    }, ['topk_logprobs', 'topk_ids', 'reference_logprob']);
    this.stats.unembedRuns++;
    this.stats.unembedRows += rows;
    return {
      k: opts.k,
      topkIds: Int32Array.from(out.topk_ids.data as BigInt64Array, Number),
      topkLogprobs: out.topk_logprobs.data as Float32Array,
      referenceLogprob: out.reference_logprob.data as Float32Array,
    };
  }

  private async run(graph: 'full' | 'step' | 'unembed', feeds: Record<string, HostTensor>, fetches: string[]) {
    const started = performance.now();
    try {
      return await this.worker.call('run', { graph, feeds, fetches });
    } finally {
      this.timings[graph] += performance.now() - started;
    }
  }

  private toCompute(values: Float32Array, dims: number[]): HostTensor {
    if (this.info.computeDtype === 'float32') return { type: 'float32', data: values, dims };
    return { type: 'float16', data: Uint16Array.from(values, encodeHalf), dims };
  }

  private fromCompute(t: HostTensor): Float32Array {
    if (t.type === 'float32') return t.data;
    if (t.type === 'float16') return Float32Array.from(t.data, decodeHalf);
    throw new Error(`expected a float tensor, got ${t.type}`);
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

  private checkLayer(layer: number, what: string): void {
    const { nLayers } = this.config;
    if (!Number.isInteger(layer) || layer < -1 || layer >= nLayers) {
      throw new LogitscopeError('layer_out_of_range', `layer ${layer} is outside -1..${nLayers - 1} (-1 = embeddings)`, what);
    }
  }
}

function int64(values: number[]): HostTensor {
  return { type: 'int64', data: BigInt64Array.from(values, BigInt), dims: [values.length] };
}

/** Row `b` of layer `layer` (-1 = embeddings) in a SourceResult. */
export function residRow(r: SourceResult, layer: number, b: number, dModel: number): Float32Array {
  const start = ((layer + 1) * r.batch + b) * dModel;
  return r.resid.subarray(start, start + dModel);
}
