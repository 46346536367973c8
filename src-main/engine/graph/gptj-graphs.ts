/** The engine's graphs for every family (the file keeps the name it had when GPT-J was the only one). */
import type { ModelConfig } from '../model-config.ts';
import type { TensorRef } from '../tensor-ref.ts';
import { block, causalSelfAttention, prefixAttention } from './block.ts';
import { type ComputeType, type Ctx, rotaryTables, toCompute, toFloat32, unembed } from './layers.ts';
import { GraphBuilder } from './onnx-builder.ts';
import { topWeights } from './weight-names.ts';

/** Where the session finds a checkpoint tensor: a file in its weight folder and a byte offset. */
export interface WeightPlacement {
  readonly ref: TensorRef;
  readonly location: string;
  readonly offset: number;
}

export interface GraphOptions {
  readonly config: ModelConfig;
  readonly dtype: ComputeType;
  readonly place: (name: string) => WeightPlacement;
}

/**
 * The two graphs the engine runs, one session each, for every family. Names double as session ids
 * across the worker boundary. `blocks` holds every block's weights (and the embeddings), `unembed`
 * the final norm and the head: no weight is in two sessions, so a device holds each once, except
 * a tied head's embedding matrix (GPT-2, Gemma, some Llama), which both read.
 */
export type GraphName = 'blocks' | 'unembed';

/** No patch in a whole-prompt run (source or prefix): patch_layer takes this value, which matches no layer. */
export const NO_PATCH_LAYER = -2;

/**
 * The `mode` input of the blocks graph: which body runs. `source` and `prefix` are the full body
 * (whole prompts), without and with the key/value cache as outputs: a source pass must not hold
 * every layer's keys and values at once (2 × 28 × 4096 fp16 values, 0.46 MB, per token of GPT-J).
 */
export const BLOCKS_MODE = { source: 0, prefix: 1, step: 2 } as const;

function context(name: string, o: GraphOptions): Ctx {
  const b = new GraphBuilder(name);
  const registered = new Set<string>();
  return {
    b,
    c: o.config,
    dt: o.dtype,
    w(key) {
      if (!registered.has(key)) {
        const p = o.place(key);
        b.externalWeight(p.ref, p.location, p.offset);
        registered.add(key);
      }
      return key;
    },
  };
}

/** The blocks graph's inputs; those of the bodies that do not run take tiny placeholders. */
interface BlocksInputs {
  // whole prompts (source and prefix)
  readonly ids: string; // input_ids [batch, seq]
  readonly gatherRows: string; // gather_rows [G]
  readonly patchLayer: string; // patch_layer [1]
  readonly patchPos: string; // patch_positions [batch] or [1]
  // every body
  readonly vectors: string; // patch_vectors [rows, d] fp32
  // step
  readonly counts: string; // active_counts [nLayers+1]
  readonly position: string; // position [1]
  readonly prefixKey: string; // prefix_key [nLayers, KV, prefix, dh]
  readonly prefixValue: string; // prefix_value [nLayers, KV, prefix, dh]
}

/**
 * `blocks`: the one graph that holds the blocks' weights. Its body is an `If` on `mode`: whole
 * prompts (BLOCKS_MODE.source, or .prefix to also return the key/value cache) or the step body
 * (BLOCKS_MODE.step: patched rows against a cached prefix). Every body reads the same initializers
 * of this graph by name, so a session holds, and a GPU receives, each block's weights once (two
 * sessions held them twice: ~11 GB more for GPT-J in fp16).
 *
 * Inputs: mode [1]; for whole prompts input_ids [batch, seq], gather_rows [G], patch_layer [1],
 *   patch_positions [batch] (or [1]); patch_vectors [rows, d] fp32 (every body); for the step
 *   active_counts [nLayers+1], position [1], prefix_key / prefix_value [nLayers, nKeyValueHeads, prefix, dHead].
 * Outputs: resid [nLayers+1, G, d] fp32 (whole prompts) or [1, rows, d] fp32 (step: the final
 *   residual); present_key / present_value [nLayers, batch, nKeyValueHeads, seq, dHead] in the compute type
 *   (prefix; the other bodies give empty ones). Ranks agree between bodies, so each If output has one type.
 */
export function buildBlocksGraph(o: GraphOptions): Uint8Array {
  const ctx = context('gptj_blocks', o);
  const { b, c, dt } = ctx;
  const mode = b.input('mode', 'int64', [1]);
  const inputs: BlocksInputs = {
    ids: b.input('input_ids', 'int64', ['batch', 'seq']),
    gatherRows: b.input('gather_rows', 'int64', ['gathered']),
    patchLayer: b.input('patch_layer', 'int64', [1]),
    patchPos: b.input('patch_positions', 'int64', ['patch_rows']),
    vectors: b.input('patch_vectors', 'float32', ['rows', c.dModel]),
    counts: b.input('active_counts', 'int64', [c.nLayers + 1]),
    position: b.input('position', 'int64', [1]),
    prefixKey: b.input('prefix_key', dt, [c.nLayers, c.nKeyValueHeads, 'prefix', c.dHead]),
    prefixValue: b.input('prefix_value', dt, [c.nLayers, c.nKeyValueHeads, 'prefix', c.dHead]),
  };
  const is = (m: number) => b.op('Equal', [mode, b.constInt64([m])]); // [1] bool
  const step = b.subgraph('step');
  stepBody({ ...ctx, b: step }, inputs);
  const prefix = b.subgraph('prefix');
  fullBody({ ...ctx, b: prefix }, inputs, { cache: true });
  const source = b.subgraph('source');
  fullBody({ ...ctx, b: source }, inputs, { cache: false });
  const cacheDims = [c.nLayers, 'batch', c.nKeyValueHeads, 'seq', c.dHead];
  // If is two-way: whole prompts are one branch, itself an If between prefix and source.
  const prompts = b.subgraph('whole_prompts');
  const [pResid, pKey, pValue] = prompts.opN('If', [is(BLOCKS_MODE.prefix)], 3, { then_branch: { graph: prefix }, else_branch: { graph: source } });
  prompts.output(pResid, 'prompts_resid', 'float32', [c.nLayers + 1, 'gathered', c.dModel]);
  prompts.output(pKey, 'prompts_key', dt, cacheDims);
  prompts.output(pValue, 'prompts_value', dt, cacheDims);
  const [resid, key, value] = b.opN('If', [is(BLOCKS_MODE.step)], 3, { then_branch: { graph: step }, else_branch: { graph: prompts } });
  b.output(resid, 'resid', 'float32', ['resid_layers', 'resid_rows', c.dModel]);
  b.output(key, 'present_key', dt, cacheDims);
  b.output(value, 'present_value', dt, cacheDims);
  return b.encode();
}

/**
 * The full body: whole prompts through every block, optionally overwriting one position's residual
 * at the output of one block (the naive patched run, and the prefix run that fills the key/value
 * cache). The residual stream is read out at the flat rows gather_rows (row * seq + position), so
 * one prompt run once gives any number of its positions. patch_layer NO_PATCH_LAYER means no
 * patch; patch_positions / patch_vectors are per batch row, or one of each for every row.
 * There are no logits here: the model's own logits come from `unembed` on the last resid row, the
 * same path as every technique's, so lm_head lives in one session only.
 */
function fullBody(ctx: Ctx, x: BlocksInputs, o: { cache: boolean }): void {
  const { b, c, dt } = ctx;
  const patchVec = toCompute(ctx, x.vectors); // [batch or 1, d]
  const shape = b.op('Shape', [x.ids]); // [2]
  const batch = b.op('Slice', [shape, b.constInt64([0]), b.constInt64([1])]); // [1]
  const seq = b.op('Slice', [shape, b.constInt64([1]), b.constInt64([2])]); // [1]
  const positions = b.op('Range', [b.constInt64([0], []), b.op('Squeeze', [seq]), b.constInt64([1], [])]); // [seq]
  const attention = causalSelfAttention(ctx, { batch, seq, positions, rotary: rotaryOf(ctx, positions) });
  const patch = patcher(ctx, { batch, seq, positions, patchLayer: x.patchLayer, patchPos: x.patchPos, patchVec });
  const readOut = (h: string) => b.op('Gather', [h, x.gatherRows], { axis: 0 }); // [G, d]

  let h = patch(embed(ctx, { ids: x.ids, positions, batch, seq }), -1); // [batch*seq, d]
  const resid = [readOut(h)];
  const keys: string[] = [];
  const values: string[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const out = block(ctx, l, h, attention);
    h = patch(out.residPost, l); // [batch*seq, d]
    resid.push(readOut(h));
    if (!o.cache) continue; // each block's keys and values die with its attention
    keys.push(b.op('Unsqueeze', [out.key, b.constInt64([0])])); // [1, batch, H, seq, dh]
    values.push(b.op('Unsqueeze', [out.value, b.constInt64([0])])); // [1, batch, H, seq, dh]
  }
  const stacked = b.op('Concat', resid.map((r) => b.op('Unsqueeze', [r, b.constInt64([0])])), { axis: 0 }); // [L+1, G, d]
  const name = o.cache ? 'prefix' : 'source';
  b.output(toFloat32(ctx, stacked), `${name}_resid`, 'float32', [c.nLayers + 1, 'gathered', c.dModel]);
  const cacheDims = [c.nLayers, 'batch', c.nKeyValueHeads, 'seq', c.dHead];
  b.output(o.cache ? b.op('Concat', keys, { axis: 0 }) : noCache(ctx), `${name}_present_key`, dt, cacheDims);
  b.output(o.cache ? b.op('Concat', values, { axis: 0 }) : noCache(ctx), `${name}_present_value`, dt, cacheDims);
}

/**
 * hook_embed, the residual stream entering block 0: token embeddings, scaled where the model
 * scales them (Gemma: √d, in the compute type as Hugging Face rounds it), plus learned positions (GPT-2).
 */
function embed(ctx: Ctx, o: { ids: string; positions: string; batch: string; seq: string }): string {
  const { b, c, dt } = ctx;
  const top = topWeights(c);
  let e = b.op('Gather', [ctx.w(top.wte.weight), b.op('Reshape', [o.ids, b.constInt64([-1])])], { axis: 0 }); // [batch*seq, d]
  if (c.embedScale !== 1) e = b.op('Mul', [e, b.constFloat([c.embedScale], dt)]);
  if (!top.wpe) return e;
  const pos = b.op('Gather', [ctx.w(top.wpe.weight), o.positions], { axis: 0 }); // [seq, d]
  const perPrompt = b.op('Reshape', [e, b.op('Concat', [o.batch, o.seq, b.constInt64([c.dModel])], { axis: 0 })]); // [batch, seq, d]
  return b.op('Reshape', [b.op('Add', [perPrompt, pos]), b.constInt64([-1, c.dModel])]); // [batch*seq, d]
}

/** Rotary tables for positions [n] (broadcast over heads), or none where positions are learned. */
function rotaryOf(ctx: Ctx, positions: string) {
  return ctx.c.positionalEmbeddingType === 'rotary' ? rotaryTables(ctx, positions, 1) : undefined;
}

/** An empty key/value cache [nLayers, 0, KV, 0, dh], for the bodies that make none (If's outputs are the same in every branch). */
function noCache(ctx: Ctx): string {
  const { c } = ctx;
  return ctx.b.constFloat([], ctx.dt, [c.nLayers, 0, c.nKeyValueHeads, 0, c.dHead]);
}

/** `patch(h, layer)`: h [batch*seq, d] with each row's patch position overwritten by its patch vector when patch_layer is `layer`. */
function patcher(ctx: Ctx, o: { batch: string; seq: string; positions: string; patchLayer: string; patchPos: string; patchVec: string }) {
  const { b, c } = ctx;
  const residShape = b.op('Concat', [o.batch, o.seq, b.constInt64([c.dModel])], { axis: 0 }); // [3]
  const isPatchPos = b.op('Unsqueeze', [
    b.op('Equal', [b.op('Unsqueeze', [o.positions, b.constInt64([0])]), b.op('Unsqueeze', [o.patchPos, b.constInt64([1])])]),
    b.constInt64([2]),
  ]); // [batch or 1, seq, 1]
  const patchRow = b.op('Unsqueeze', [o.patchVec, b.constInt64([1])]); // [batch or 1, 1, d]
  return (h: string, layer: number) => {
    const here = b.op('And', [isPatchPos, b.op('Equal', [o.patchLayer, b.constInt64([layer])])]); // [batch or 1, seq, 1]
    const patched = b.op('Where', [here, patchRow, b.op('Reshape', [h, residShape])]); // [batch, seq, d]
    return b.op('Reshape', [patched, b.constInt64([-1, c.dModel])]); // [batch*seq, d]
  };
}

/**
 * The step body: the fast patched run. Each row is one patched vector placed at the last position
 * of the same target prompt, whose prefix keys/values are given (computed once by the full body).
 * Row r enters the stack after block inject_layer[r]; rows must be sorted by that layer, so the
 * rows active at block j are always a prefix of the batch and every row passes only through the
 * blocks above it. active_counts entry j = rows whose inject layer is < j (entry nLayers = rows);
 * position = the patched token's position = the prefix length.
 * Output: the residual after the last block (before ln_f), [1, rows, d] fp32, rows in input order.
 */
function stepBody(ctx: Ctx, x: BlocksInputs): void {
  const { b, c, dt } = ctx;
  const vectors = toCompute(ctx, x.vectors); // [rows, d]
  // Every row sits at the same position, so one rotary table [1, 1, rd/2(, 1)] broadcasts over rows.
  const attention = prefixAttention(ctx, { prefixKey: x.prefixKey, prefixValue: x.prefixValue, position: x.position, rotary: rotaryOf(ctx, x.position) });
  const count = (j: number) => b.op('Slice', [x.counts, b.constInt64([j]), b.constInt64([j + 1])]); // [1]
  const entering = (from: string, to: string) => b.op('Slice', [vectors, from, to, b.constInt64([0])]); // [n_j, d]

  let h = entering(b.constInt64([0]), count(0)); // rows injected before block 0 (at hook_embed)
  for (let l = 0; l < c.nLayers; l++) {
    if (l > 0) h = b.op('Concat', [h, entering(count(l - 1), count(l))], { axis: 0 }); // [active, d]
    h = block(ctx, l, h, attention).residPost; // [active, d]
  }
  h = b.op('Concat', [h, entering(count(c.nLayers - 1), count(c.nLayers))], { axis: 0 }); // rows injected after the last block
  b.output(b.op('Unsqueeze', [toFloat32(ctx, h), b.constInt64([0])]), 'step_resid', 'float32', [1, 'rows', c.dModel]);
  b.output(noCache(ctx), 'step_no_key', dt, [c.nLayers, 0, c.nKeyValueHeads, 0, c.dHead]);
  b.output(noCache(ctx), 'step_no_value', dt, [c.nLayers, 0, c.nKeyValueHeads, 0, c.dHead]);
}

/**
 * `unembed`: the final norm and the head (and Gemma 2's soft-cap) on residual rows, log-softmax
 * in fp32, and only what the sweep needs back: the top k, and the log-probability of one chosen id per row (the reference token).
 * Argmax and top-k range over all dVocab rows, as TransformerLens (and so the seed) did. The
 * model's own distribution at a source position is this same graph on the last resid row, so its
 * top-1 (the reference) and every technique's top-1 come from one kernel path.
 *
 * Inputs: resid [rows, d] fp32; reference_ids [rows]; k [1]; want_measures [1] (1 = compute them);
 *   model_logprobs [examples, dVocab] fp32, the model's own log-probabilities at each example's
 *   source position (given once per example, not per row), and model_rows [rows], which example
 *   each row compares with (both read only with want_measures = 1; [0, dVocab] and [0] otherwise).
 * Outputs: topk_logprobs [rows, k] (descending), topk_ids [rows, k], reference_logprob [rows];
 *   the per-row measures (docs/PROTOCOL.md), each [rows] with want_measures = 1, else [0]:
 *   entropy, nats, of the full next-token distribution (all dVocab rows); kl, nats,
 *   KL(p_model ‖ p_row) over all dVocab rows; rank (int64), the count of ids whose logit is
 *   strictly greater than the reference id's (0 = the reference is the row's top-1, ties share the
 *   better rank). They are an `If`, because onnxruntime runs every node of a graph whatever is
 *   fetched: unasked, the exps over every logit cost sweeps ~10% of their time;
 *   logits [rows, dVocab] and logsumexp [rows] (fetched for source rows only: log p = logit - lse);
 *   finite_check [rows] = lse + min logit, finite exactly when every logit of the row is (a NaN
 *   makes lse NaN, +inf makes lse inf, -inf makes the min -inf), so NaN/Inf is one value per row to test.
 */
export function buildUnembedGraph(o: GraphOptions): Uint8Array {
  const ctx = context('gptj_unembed', o);
  const { b, c } = ctx;
  const resid = toCompute(ctx, b.input('resid', 'float32', ['rows', c.dModel])); // [rows, d]
  const refIds = b.input('reference_ids', 'int64', ['rows']);
  const k = b.input('k', 'int64', [1]);
  const wantMeasures = b.input('want_measures', 'int64', [1]);
  const modelLogprobs = b.input('model_logprobs', 'float32', ['examples', c.dVocab]);
  const modelRows = b.input('model_rows', 'int64', ['measured_rows']);
  const wantTrack = b.input('want_track', 'int64', [1]);
  const trackIds = b.input('track_ids', 'int64', ['track_rows']);
  const logits = unembed(ctx, resid); // [rows, V] fp32
  // Log-probabilities only where they are read: logit - logsumexp, instead of a full [rows, V] log-softmax.
  const lse = b.op('ReduceLogSumExp', [logits], { axes: [1], keepdims: 1 }); // [rows, 1]
  const [values, indices] = b.opN('TopK', [logits, k], 2, { axis: 1, largest: 1, sorted: 1 }); // [rows, k]
  const refLogit = b.op('GatherElements', [logits, b.op('Unsqueeze', [refIds, b.constInt64([1])])], { axis: 1 }); // [rows, 1]
  const squeeze = (x: string) => b.op('Squeeze', [x, b.constInt64([1])]); // [rows, 1] -> [rows]
  const minLogit = b.op('ReduceMin', [logits], { axes: [1], keepdims: 1 }); // [rows, 1]
  const [entropy, kl, rank] = measures(ctx, { logits, lse, refLogit, modelLogprobs, modelRows, want: wantMeasures });
  const [trackLogprob, trackRank] = tracked(ctx, { logits, lse, trackIds, want: wantTrack });
  b.output(b.op('Sub', [values, lse]), 'topk_logprobs', 'float32', ['rows', 'k']);
  b.output(indices, 'topk_ids', 'int64', ['rows', 'k']);
  b.output(squeeze(b.op('Sub', [refLogit, lse])), 'reference_logprob', 'float32', ['rows']);
  b.output(entropy, 'entropy', 'float32', ['measure_rows']);
  b.output(kl, 'kl', 'float32', ['measure_rows']);
  b.output(rank, 'rank', 'int64', ['measure_rows']);
  b.output(trackLogprob, 'track_logprob', 'float32', ['tracked_rows']);
  b.output(trackRank, 'track_rank', 'int64', ['tracked_rows']);
  b.output(logits, 'logits', 'float32', ['rows', c.dVocab]);
  b.output(squeeze(lse), 'logsumexp', 'float32', ['rows']);
  b.output(squeeze(b.op('Add', [lse, minLogit])), 'finite_check', 'float32', ['rows']);
  return b.encode();
}

/**
 * The per-row measures of buildUnembedGraph, in an If on `want`: [entropy, kl, rank], each [rows]
 * or, unasked, [0]. Each sum is over terms that are each small (p·log p, p_m·(log p_m − log p)),
 * instead of a difference of two numbers near lse, which fp32 would round away.
 */
function measures(ctx: Ctx, x: { logits: string; lse: string; refLogit: string; modelLogprobs: string; modelRows: string; want: string }): string[] {
  const { b } = ctx;
  const m = b.subgraph('with_measures');
  const sumRows = (v: string) => m.op('ReduceSum', [v, b.constInt64([1])], { keepdims: 0 }); // [rows, V] -> [rows]
  const logp = m.op('Sub', [x.logits, x.lse]); // [rows, V]
  m.output(m.op('Neg', [sumRows(m.op('Mul', [m.op('Exp', [logp]), logp]))]), 'entropy_rows', 'float32', ['rows']);
  const model = m.op('Gather', [x.modelLogprobs, x.modelRows], { axis: 0 }); // [rows, V]
  m.output(sumRows(m.op('Mul', [m.op('Exp', [model]), m.op('Sub', [model, logp])])), 'kl_rows', 'float32', ['rows']);
  // Counted in float32 (exact below 2^24 ids, so the same counts): onnxruntime's CPU sum of an int64
  // [rows, V] is slow; in float32 the measures cost the bench's unembedding ~10 ms/example, not ~17.
  m.output(countAbove(ctx, m, x.logits, x.refLogit), 'rank_rows', 'int64', ['rows']);
  const none = b.subgraph('no_measures');
  none.output(b.constFloat([], 'float32', [0]), 'entropy_none', 'float32', [0]);
  none.output(b.constFloat([], 'float32', [0]), 'kl_none', 'float32', [0]);
  none.output(b.constInt64([], [0]), 'rank_none', 'int64', [0]);
  return b.opN('If', [b.op('Equal', [x.want, b.constInt64([1])])], 3, { then_branch: { graph: m }, else_branch: { graph: none } });
}

/** Rows counting the ids whose logit is strictly greater than `than` [rows, 1], in float32 (see measures), as int64 [rows]. */
function countAbove(ctx: Ctx, g: GraphBuilder, logits: string, than: string): string {
  const above = g.op('Cast', [g.op('Greater', [logits, than])], { to: GraphBuilder.elemCode('float32') }); // [rows, V]
  return g.op('Cast', [g.op('ReduceSum', [above, ctx.b.constInt64([1])], { keepdims: 0 })], { to: GraphBuilder.elemCode('int64') });
}

/**
 * A followed token per row (a sweep's record token, an extraction's followed one), in an If on
 * `want`: [log-probability, rank], each [rows] or, unasked, [0]. One gather and one count over the
 * row's logits, read from the same logits as everything else: no second unembedding.
 */
function tracked(ctx: Ctx, x: { logits: string; lse: string; trackIds: string; want: string }): string[] {
  const { b } = ctx;
  const t = b.subgraph('with_track');
  const logit = t.op('GatherElements', [x.logits, t.op('Unsqueeze', [x.trackIds, b.constInt64([1])])], { axis: 1 }); // [rows, 1]
  t.output(t.op('Squeeze', [t.op('Sub', [logit, x.lse]), b.constInt64([1])]), 'track_logprob_rows', 'float32', ['rows']);
  t.output(countAbove(ctx, t, x.logits, logit), 'track_rank_rows', 'int64', ['rows']);
  const none = b.subgraph('no_track');
  none.output(b.constFloat([], 'float32', [0]), 'track_logprob_none', 'float32', [0]);
  none.output(b.constInt64([], [0]), 'track_rank_none', 'int64', [0]);
  return b.opN('If', [b.op('Equal', [x.want, b.constInt64([1])])], 2, { then_branch: { graph: t }, else_branch: { graph: none } });
}
