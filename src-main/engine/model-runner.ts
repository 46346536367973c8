/**
 * The worker's side of the engine: the sessions of one model, the target prompts' prefix
 * keys/values, and the batch operation. Residuals, prefixes and the model's own distributions are
 * made and used here; only what is stored goes back to the main thread.
 */
import { LogitscopeError } from '../errors.ts';
import { residHook, residIndex } from '../protocol/hooks.ts';
import type { ModelConfig } from './config.ts';
import { BLOCKS_MODE, type GraphName, NO_PATCH_LAYER } from './graph/gptj-graphs.ts';
import type { ComputeType } from './graph/layers.ts';
import { logSoftmaxRows } from '../protocol/results.ts';
import { type LensOpener, LensSessions } from './lens-sessions.ts';
import { Lru } from './lru.ts';
import type { HostTensor, Session } from './ort-session.ts';
import { planSourceRows } from './source-rows.ts';
import { residRowAt, type BatchRequest, type BatchResult, type EngineStats, type EngineTimings, type ModelRows, type RowMeasures, type SourceItem, type UnembedReply } from './worker-protocol.ts';

/** Prefix keys/values of one target prompt, in the compute type: they never leave the worker. */
interface Prefix {
  tokens: number[];
  key: HostTensor; // [nLayers, nKeyValueHeads, prefix, dHead]
  value: HostTensor; // [nLayers, nKeyValueHeads, prefix, dHead]
}

/** One unembedding run as the graph gives it. */
interface Unembedded {
  topkIds: BigInt64Array; // [rows, k]
  topkLogprobs: Float32Array; // [rows, k]
  referenceLogprob: Float32Array; // [rows]
  measures?: RowMeasures; // when asked for
  tracked?: { logprob: Float32Array; rank: Int32Array }; // [rows] each, when a token id per row was given
  check: Float32Array; // [rows], finite iff every logit of the row is
  logits?: Float32Array; // [rows, V]
  logsumexp?: Float32Array; // [rows]
}

/** Target prompts kept: the built-in ones and a few custom ones; each is nLayers × 2 × prefix × d values. */
const MAX_PREFIXES = 16;

export class ModelRunner {
  readonly stats: EngineStats = { sourceRuns: 0, sourceRows: 0, patchedRuns: 0, patchedRows: 0, unembedRuns: 0, unembedRows: 0, naiveRuns: 0, lensRuns: 0, lensRows: 0 };
  readonly timings: EngineTimings = { full: 0, step: 0, unembed: 0, lens: 0, host: 0 };
  /** Distinct prompts the source passes ran (stats.sourceRows counts the items read out of them). */
  sourcePrompts = 0;
  private readonly prefixes = new Lru<string, Prefix>(MAX_PREFIXES);
  private readonly lenses: LensSessions;
  /** Feeds for the blocks graph's inputs that the mode being run does not read: the smallest valid tensors. */
  private readonly unusedByFull: Record<string, HostTensor>;
  private readonly unusedByStep: Record<string, HostTensor>;

  constructor(
    private readonly sessions: Record<GraphName, Session>,
    private readonly config: ModelConfig,
    private readonly computeType: ComputeType,
    openLens?: LensOpener,
  ) {
    this.lenses = new LensSessions(openLens);
    const { nLayers, nKeyValueHeads, dHead } = config;
    const noPrefix = this.computeTensor([nLayers, nKeyValueHeads, 0, dHead]);
    this.unusedByFull = { active_counts: int64(new Array(nLayers + 1).fill(0)), position: int64([0]), prefix_key: noPrefix, prefix_value: noPrefix };
    this.unusedByStep = {
      input_ids: { type: 'int64', data: new BigInt64Array(1), dims: [1, 1] },
      gather_rows: int64([0]),
      patch_layer: int64([NO_PATCH_LAYER]),
      patch_positions: int64([0]),
    };
  }

  /** Every layer's residual at each item's position, and the model's own logits there. */
  async source(items: SourceItem[], names: string[]): Promise<{ resid: Float32Array; logits: Float32Array }> {
    const resid = await this.sourceResid(items);
    const u = await this.unembedRun(this.finalRows(resid, items.length), new Array(items.length).fill(0), 1, { logits: true, own: true });
    this.checkSource(resid, u.check, names);
    return { resid, logits: u.logits! };
  }

  /** The prefix of a target prompt (all tokens but the last), computed once and kept. */
  async prefix(tokens: number[]): Promise<Prefix> {
    const key = tokens.join(',');
    let p = this.prefixes.get(key);
    if (!p) this.prefixes.set(key, (p = await this.computePrefix(tokens)));
    return p;
  }

  /** Row r's vector enters the target prompt's last position after block injectLayers[r]; returns resid_final [rows, d] in that order. */
  async patched(prefixTokens: number[], vectors: Float32Array, injectLayers: number[]): Promise<Float32Array> {
    const { nLayers, dModel } = this.config;
    const prefix = await this.prefix(prefixTokens);
    const rows = injectLayers.length;
    // The step graph wants rows sorted by inject layer; sort, run, and put the results back in order.
    // Row 0 is a zero sentinel entering at the embeddings: it keeps every block's batch non-empty,
    // because onnxruntime's CPU kernels crash (not throw) on a zero-row LayerNormalization.
    const order = injectLayers.map((l, i) => [l, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const sorted = new Float32Array((rows + 1) * dModel); // [1 + rows, d]
    order.forEach(([, i], r) => sorted.set(vectors.subarray(i * dModel, (i + 1) * dModel), (r + 1) * dModel));
    const counts = new Array<number>(nLayers + 1).fill(1);
    for (const l of injectLayers) for (let j = l + 1; j <= nLayers; j++) counts[j]++;
    const out = await this.runStep({
      patch_vectors: f32(sorted, [rows + 1, dModel]),
      active_counts: int64(counts),
      position: int64([prefixTokens.length - 1]),
      prefix_key: prefix.key,
      prefix_value: prefix.value,
    });
    this.stats.patchedRuns++;
    this.stats.patchedRows += rows;
    const final = out.resid.data as Float32Array; // [1, 1 + rows, d]
    const result = new Float32Array(rows * dModel); // [rows, d]
    order.forEach(([, i], r) => result.set(final.subarray((r + 1) * dModel, (r + 2) * dModel), i * dModel));
    return result;
  }

  /** The naive patched run: the whole target prompt through every block, one row. */
  async naive(targetTokens: number[], layer: number, vector: Float32Array): Promise<Float32Array> {
    const { dModel, nLayers } = this.config;
    const last = targetTokens.length - 1;
    const out = await this.runFull('source', {
      input_ids: { type: 'int64', data: BigInt64Array.from(targetTokens, BigInt), dims: [1, targetTokens.length] },
      gather_rows: int64([last]),
      patch_layer: int64([layer]),
      patch_positions: int64([last]),
      patch_vectors: f32(vector, [1, dModel]),
    }, ['resid']);
    this.stats.naiveRuns++;
    return (out.resid.data as Float32Array).slice(nLayers * dModel, (nLayers + 1) * dModel);
  }

  /** ln_f + lm_head on rows [rows, d]; every row must come out finite. */
  async unembed(o: { resid: Float32Array; referenceIds: number[]; k: number; logits: boolean; names: string[]; model?: ModelRows }): Promise<UnembedReply> {
    const rows = o.referenceIds.length;
    // Without the model's rows there is nothing to measure KL against: a zero row stands in, and kl reads NaN.
    const model = o.model ?? { logprobs: new Float32Array(this.config.dVocab), rows: new Array<number>(rows).fill(0) };
    const u = await this.unembedRun(o.resid, o.referenceIds, o.k, { logits: o.logits, own: false, model });
    const bad = u.check.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw nonFinite(`the logits of ${o.names[bad] ?? `row ${bad}`} are not finite (NaN or ±Inf)`);
    const measures = u.measures!;
    if (!o.model) measures.kl.fill(NaN);
    return { k: o.k, topkIds: Int32Array.from(u.topkIds, Number), topkLogprobs: u.topkLogprobs, referenceLogprob: u.referenceLogprob, measures, logits: u.logits };
  }

  /**
   * One batch, start to end: the source pass, the model's own distribution at each position, every
   * technique's rows (mapped where it is a tuned lens, patched where it is a patchscope) and their
   * unembedding. Nothing per example crosses to the main thread but the stored numbers.
   */
  async batch(req: BatchRequest): Promise<BatchResult> {
    const { dModel, dVocab } = this.config;
    const { items, names, k } = req;
    const resid = await this.sourceResid(items); // [L+1, batch, d]
    const model = await this.unembedRun(this.finalRows(resid, items.length), new Array(items.length).fill(0), 1, { logits: true, own: true });
    this.checkSource(resid, model.check, names);
    const referenceTop1 = Int32Array.from(model.topkIds, Number); // [batch] (k = 1)
    // Each example's log-probabilities cross into the unembedding once per batch; rows gather theirs in the graph.
    const track = req.track;
    const modelLogprobs = req.measures ? logSoftmaxRows(model.logits!, dVocab, model.logsumexp) : null;

    const total = req.techniques.reduce((n, t) => n + t.example.length, 0);
    const rows = new Float32Array(total * dModel); // [rows, d]: every technique's final residual, before ln_f
    let offset = 0;
    for (const t of req.techniques) {
      const vectors = rows.subarray(offset * dModel, (offset + t.example.length) * dModel);
      t.example.forEach((b, r) => vectors.set(residRowAt(resid, { batch: items.length, dModel }, t.sourceLayer[r], b), r * dModel));
      if (t.lens) await this.mapThroughLens(t.lens.dir, vectors, t.sourceLayer);
      if (t.prefixTokens) vectors.set(await this.patched(t.prefixTokens, vectors, t.injectLayer));
      offset += t.example.length;
    }

    const out: BatchResult = {
      k,
      referenceTop1,
      topkIds: new Int32Array(total * k),
      topkLogprobs: new Float32Array(total * k),
      referenceLogprob: new Float32Array(total),
      ...(req.measures && { measures: { entropy: new Float32Array(total), kl: new Float32Array(total), rank: new Int32Array(total) } }),
      ...(track !== undefined && { tracked: { logprob: new Float32Array(total), rank: new Int32Array(total) } }),
      modelLogprobOfTop1: new Float32Array(total),
    };
    const rowExample = req.techniques.flatMap((t) => t.example);
    for (let start = 0; start < total; start += req.maxUnembedRows) {
      const n = Math.min(req.maxUnembedRows, total - start);
      const refIds = rowExample.slice(start, start + n).map((b) => referenceTop1[b]);
      const against = modelLogprobs && { logprobs: modelLogprobs, rows: rowExample.slice(start, start + n) };
      // A followed token per row is read from the same logits, in the same run (the graph's `tracked`).
      const chunk = rows.subarray(start * dModel, (start + n) * dModel);
      const trackIds = track && rowExample.slice(start, start + n).map((b) => track[b]);
      const u = await this.unembedRun(chunk, refIds, k, { logits: false, own: false, model: req.measures ? against : null, track: trackIds });
      const bad = u.check.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw nonFinite(`${rowName(req, start + bad)} gives logits that are not finite (NaN or ±Inf)`);
      out.topkIds.set(Int32Array.from(u.topkIds, Number), start * k);
      out.topkLogprobs.set(u.topkLogprobs, start * k);
      out.referenceLogprob.set(u.referenceLogprob, start);
      if (out.measures) for (const m of ['entropy', 'kl', 'rank'] as const) out.measures[m].set(u.measures![m], start);
      if (out.tracked) {
        out.tracked.logprob.set(u.tracked!.logprob, start);
        out.tracked.rank.set(u.tracked!.rank, start);
      }
    }
    // The paper's convention reads the model's own distribution at the row's top-1: one logit per row.
    for (let r = 0; r < total; r++) {
      const b = rowExample[r];
      out.modelLogprobOfTop1[r] = model.logits![b * dVocab + out.topkIds[r * k]] - model.logsumexp![b];
    }
    return out;
  }

  /**
   * Maps rows [n, d] in place through a tuned lens: row r by the affine map of its source layer
   * layers[r] (lens layer index layers[r] + 1, 0 = the embeddings). Rows are grouped by layer into
   * one [groups, width, d] run (groups shorter than the widest are zero-padded; in a sweep every
   * layer has one row per example, so none are). The last layer's rows are left as they are: its
   * map is the identity, exactly, and copying is cheaper than a d × d product.
   */
  private async mapThroughLens(dir: string, vectors: Float32Array, layers: readonly number[]): Promise<void> {
    const { nLayers, dModel: d } = this.config;
    const groups = new Map<number, number[]>(); // lens layer index -> row indices
    layers.forEach((l, r) => {
      if (l === nLayers - 1) return;
      const index = residIndex(residHook(l)); // the lens's layer axis is the residual stack's
      const g = groups.get(index);
      if (g) g.push(r);
      else groups.set(index, [r]);
    });
    if (groups.size === 0) return;
    const members = [...groups.values()];
    const width = Math.max(...members.map((g) => g.length));
    const input = new Float32Array(groups.size * width * d); // [groups, width, d]
    members.forEach((rows, g) => rows.forEach((r, j) => input.set(vectors.subarray(r * d, (r + 1) * d), (g * width + j) * d)));
    const session = await this.lenses.session(dir);
    const started = performance.now();
    let mapped: Float32Array;
    try {
      const out = await session.run({ rows: f32(input, [groups.size, width, d]), layer_index: int64([...groups.keys()]) }, ['mapped']);
      mapped = out.mapped.data as Float32Array;
    } finally {
      this.timings.lens += performance.now() - started;
    }
    members.forEach((rows, g) => rows.forEach((r, j) => vectors.set(mapped.subarray((g * width + j) * d, (g * width + j + 1) * d), r * d)));
    this.stats.lensRuns++;
    this.stats.lensRows += members.reduce((n, g) => n + g.length, 0);
  }

  /**
   * resid [L+1, items, d] at each item's position. Items that share their tokens up to their
   * positions (several positions of one prompt) are read from one row of the batch: each distinct
   * prompt runs once.
   */
  private async sourceResid(items: SourceItem[]): Promise<Float32Array> {
    const { dModel } = this.config;
    const { rows, rowOf } = planSourceRows(items);
    // Right-padding is exact here: attention is causal, so positions up to each item's own never see the padding.
    const seq = rows.reduce((m, r) => Math.max(m, r.length), 0);
    const ids = new BigInt64Array(rows.length * seq); // [rows, seq]
    rows.forEach((r, b) => r.forEach((t, p) => (ids[b * seq + p] = BigInt(t))));
    const out = await this.runFull('source', {
      input_ids: { type: 'int64', data: ids, dims: [rows.length, seq] },
      gather_rows: int64(items.map((it, i) => rowOf[i] * seq + it.position)),
      patch_layer: int64([NO_PATCH_LAYER]),
      patch_positions: int64([0]),
      patch_vectors: f32(new Float32Array(dModel), [1, dModel]),
    }, ['resid']);
    this.stats.sourceRuns++;
    this.stats.sourceRows += items.length;
    this.sourcePrompts += rows.length;
    return out.resid.data as Float32Array; // [L+1, items, d]
  }

  private async computePrefix(tokens: number[]): Promise<Prefix> {
    const { nLayers, nKeyValueHeads, dHead, dModel } = this.config;
    const p = tokens.length - 1;
    if (p === 0) {
      // A one-token target (no BOS) has no prefix: the patched position attends only to itself.
      const empty = this.computeTensor([nLayers, nKeyValueHeads, 0, dHead]);
      return { tokens, key: empty, value: empty };
    }
    const out = await this.runFull('prefix', {
      input_ids: { type: 'int64', data: BigInt64Array.from(tokens.slice(0, p), BigInt), dims: [1, p] },
      gather_rows: int64([p - 1]),
      patch_layer: int64([NO_PATCH_LAYER]),
      patch_positions: int64([0]),
      patch_vectors: f32(new Float32Array(dModel), [1, dModel]),
    }, ['present_key', 'present_value']);
    // [nLayers, 1, KV, p, dh] -> [nLayers, KV, p, dh]: the batch axis of one is dropped, the data is unchanged.
    const drop = (t: HostTensor): HostTensor => ({ ...t, dims: [nLayers, nKeyValueHeads, p, dHead] }) as HostTensor;
    return { tokens, key: drop(out.present_key), value: drop(out.present_value) };
  }

  /**
   * `own`: the model's own rows, part of the source pass, so not counted in unembedRows (the
   * techniques' rows). The measures are computed only when the model's rows are given (the graph's
   * want_measures), rank and entropy included.
   */
  private async unembedRun(
    resid: Float32Array,
    referenceIds: number[],
    k: number,
    o: { logits: boolean; own: boolean; model?: ModelRows | null; track?: number[] },
  ): Promise<Unembedded> {
    const { logits, model, track } = o;
    const { dModel, dVocab } = this.config;
    const rows = referenceIds.length;
    const fetches = [
      'topk_logprobs', 'topk_ids', 'reference_logprob', 'finite_check',
      ...(model ? ['entropy', 'kl', 'rank'] : []), ...(track ? ['track_logprob', 'track_rank'] : []), ...(logits ? ['logits', 'logsumexp'] : []),
    ];
    const feeds = {
      resid: f32(resid, [rows, dModel]),
      reference_ids: int64(referenceIds),
      k: int64([k]),
      want_measures: int64([model ? 1 : 0]),
      model_logprobs: f32(model?.logprobs ?? new Float32Array(0), [model ? model.logprobs.length / dVocab : 0, dVocab]),
      model_rows: int64(model?.rows ?? []),
      want_track: int64([track ? 1 : 0]),
      track_ids: int64(track ?? []),
    };
    const out = await this.run('unembed', 'unembed', feeds, fetches);
    if (!o.own) {
      this.stats.unembedRuns++;
      this.stats.unembedRows += rows;
    }
    return {
      topkIds: out.topk_ids.data as BigInt64Array,
      topkLogprobs: out.topk_logprobs.data as Float32Array,
      referenceLogprob: out.reference_logprob.data as Float32Array,
      measures: model ? { entropy: out.entropy.data as Float32Array, kl: out.kl.data as Float32Array, rank: Int32Array.from(out.rank.data as BigInt64Array, Number) } : undefined,
      tracked: track ? { logprob: out.track_logprob.data as Float32Array, rank: Int32Array.from(out.track_rank.data as BigInt64Array, Number) } : undefined,
      check: out.finite_check.data as Float32Array,
      logits: out.logits?.data as Float32Array | undefined,
      logsumexp: out.logsumexp?.data as Float32Array | undefined,
    };
  }

  /** A source item's non-finite logits are reported with the first hook where its residual stream stops being finite. */
  private checkSource(resid: Float32Array, check: Float32Array, names: string[]): void {
    const bad = check.findIndex((x) => !Number.isFinite(x));
    if (bad < 0) return;
    const batch = check.length;
    let where = 'its residual stream is finite through the last block, so ln_f or lm_head overflowed';
    for (let layer = -1; layer < this.config.nLayers; layer++) {
      if (!residRowAt(resid, { batch, dModel: this.config.dModel }, layer, bad).every(Number.isFinite)) {
        where = `its residual stream is first non-finite at ${residHook(layer)} (layer ${layer})`;
        break;
      }
    }
    throw nonFinite(`the model's own logits for ${names[bad] ?? `item ${bad}`} are not finite (NaN or ±Inf); ${where}`);
  }

  private finalRows(resid: Float32Array, batch: number): Float32Array {
    const { nLayers, dModel } = this.config;
    return resid.subarray(nLayers * batch * dModel, (nLayers + 1) * batch * dModel); // [batch, d]
  }

  /** The blocks graph on whole prompts: source passes and naive patched runs (`source`), or a target prompt's key/value cache (`prefix`). */
  private runFull(mode: 'source' | 'prefix', feeds: Record<string, HostTensor>, fetches: string[]): Promise<Record<string, HostTensor>> {
    return this.run('blocks', 'full', { mode: int64([BLOCKS_MODE[mode]]), ...this.unusedByFull, ...feeds }, fetches);
  }

  /** The blocks graph's step body: patched rows against a cached prefix; resid is [1, rows, d]. */
  private runStep(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    return this.run('blocks', 'step', { mode: int64([BLOCKS_MODE.step]), ...this.unusedByStep, ...feeds }, ['resid']);
  }

  private async run(graph: GraphName, timing: keyof EngineTimings, feeds: Record<string, HostTensor>, fetches: string[]): Promise<Record<string, HostTensor>> {
    const started = performance.now();
    try {
      return await this.sessions[graph].run(feeds, fetches);
    } finally {
      this.timings[timing] += performance.now() - started;
    }
  }

  /** An all-zero tensor of the compute type (fp16 as its bit patterns). */
  private computeTensor(dims: number[]): HostTensor {
    const n = dims.reduce((a, b) => a * b, 1);
    return this.computeType === 'float16' ? { type: 'float16', data: new Uint16Array(n), dims } : { type: 'float32', data: new Float32Array(n), dims };
  }
}

function rowName(req: BatchRequest, row: number): string {
  let r = row;
  for (const t of req.techniques) {
    if (r < t.example.length) return `${t.id} at layer ${t.sourceLayer[r]} for ${req.names[t.example[r]]}`;
    r -= t.example.length;
  }
  return `row ${row}`;
}

function nonFinite(message: string): LogitscopeError {
  return new LogitscopeError('numerics_nonfinite', message, 'numerics');
}

function f32(data: Float32Array, dims: number[]): HostTensor {
  return { type: 'float32', data, dims };
}

function int64(values: number[]): HostTensor {
  return { type: 'int64', data: BigInt64Array.from(values, BigInt), dims: [values.length] };
}
