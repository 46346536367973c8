import { activation, type Ctx, linear, norm, rotary, softCap, softmaxFromFloat32, toFloat32 } from './layers.ts';
import { type BlockWeights, layerWeights } from './weight-names.ts';

/**
 * How a block's attention lays out its heads and gathers keys and values; the block itself is the
 * same in every graph. Heads are split as [...lead, H, dh] from the [rows, H·dh] projections and
 * attended as [..., H, T, dh] after `perm` (its own inverse): T runs over the positions of one
 * sequence in `full`, over independent rows in `step`. Keys and values have nKeyValueHeads heads.
 */
export interface Attention {
  /** Shape tensors splitting [rows, n·dh] into [...lead, n, dh], for the query heads and the key/value heads. */
  readonly headShape: string;
  readonly kvHeadShape: string;
  /** Rank of [...lead, H, dh]. */
  readonly rank: number;
  readonly perm: number[];
  /** Rotary tables (rotaryTables), absent for learned positions. */
  readonly rotary?: { cos: string; sin: string };
  /** softmax(q·kᵀ·scale) v: q and k in fp32 and v in the compute type, [..., H or KV, T, dh]; the result [..., H, T, dh] in the compute type. */
  attend(q32: string, k32: string, v: string, l: number): string;
}

/** What a block hands on: the new residual stream, and its keys (after rotary) and values for a cache. */
export interface BlockOut {
  readonly residPost: string; // [rows, d]
  readonly key: string; // [..., KV, T, dh]
  readonly value: string; // [..., KV, T, dh]
}

/** Block l on residual rows [rows, d], laid out as the model's config describes. */
export function block(ctx: Ctx, l: number, residPre: string, attention: Attention): BlockOut {
  const { b, c } = ctx;
  const w = layerWeights(c, l);
  const add = (x: string, y: string) => b.op('Add', [x, y]);
  const x = norm(ctx, residPre, w.ln1); // ln_1(resid_pre) [rows, d]
  const { out, key, value } = attn(ctx, l, x, w, attention);
  const attnOut = w.lnAttnOut ? norm(ctx, out, w.lnAttnOut) : out; // [rows, d]
  if (c.parallelAttnMlp) {
    // Parallel residual: attention and MLP both read resid_pre, so there is no resid_mid. GPT-J's
    // MLP reads ln_1's output too; NeoX's has a norm of its own.
    const mlpOut = mlp(ctx, w.ln2 ? norm(ctx, residPre, w.ln2) : x, w); // [rows, d]
    return { residPost: add(residPre, add(attnOut, mlpOut)), key, value };
  }
  const residMid = add(residPre, attnOut); // [rows, d]
  const hidden = mlp(ctx, norm(ctx, residMid, w.ln2!), w); // [rows, d]
  const mlpOut = w.lnMlpOut ? norm(ctx, hidden, w.lnMlpOut) : hidden; // [rows, d]
  return { residPost: add(residMid, mlpOut), key, value };
}

function attn(ctx: Ctx, l: number, x: string, w: BlockWeights, at: Attention) {
  const { b, c } = ctx;
  const heads = (proj: string, shape: string, rotate: boolean) => {
    const split = b.op('Reshape', [proj, shape]); // [...lead, n, dh]
    return b.op('Transpose', [rotate && at.rotary ? rotary(ctx, split, at.rank, at.rotary) : split], { perm: at.perm }); // [..., n, T, dh]
  };
  const p = projections(ctx, x, w);
  const q = heads(p.q(), at.headShape, true); // [..., H, T, dh]
  const key = heads(p.k(), at.kvHeadShape, true); // [..., KV, T, dh]
  const value = heads(p.v(), at.kvHeadShape, false); // [..., KV, T, dh]
  // q and k meet in fp32, as in Hugging Face's GPT-J: one fp16 q·k can pass 65504 and turn a row of scores into inf.
  const z = at.attend(toFloat32(ctx, q), toFloat32(ctx, key), value, l); // [..., H, T, dh]
  const merged = b.op('Reshape', [b.op('Transpose', [z], { perm: at.perm }), b.constInt64([-1, c.nHeads * c.dHead])]); // [rows, H·dh]
  return { out: linear(ctx, merged, w.out), key, value }; // out [rows, d]
}

/**
 * q [rows, H·dh], k and v [rows, KV·dh]: three projections, each made where it is first asked for
 * (so GPT-J's graph keeps its node order), or one fused projection cut in three.
 */
function projections(ctx: Ctx, x: string, w: BlockWeights): Record<'q' | 'k' | 'v', () => string> {
  const { b, c } = ctx;
  if (!w.qkv) return { q: () => linear(ctx, x, w.q!), k: () => linear(ctx, x, w.k!), v: () => linear(ctx, x, w.v!) };
  const fused = linear(ctx, x, w.qkv); // [rows, 3·H·dh]
  let q: string, k: string, v: string;
  if (w.qkv.layout === 'blocks') {
    [q, k, v] = b.opN('Split', [fused], 3, { axis: 1 }); // [rows, H·dh] each
  } else {
    // NeoX groups each head's q, k and v: [rows, H, 3·dh].
    const perHead = b.op('Reshape', [fused, b.constInt64([-1, c.nHeads, 3 * c.dHead])]); // [rows, H, 3·dh]
    const flat = (t: string) => b.op('Reshape', [t, b.constInt64([-1, c.nHeads * c.dHead])]); // [rows, H·dh]
    [q, k, v] = b.opN('Split', [perHead], 3, { axis: 2 }).map(flat); // [rows, H·dh] each
  }
  return { q: () => q, k: () => k, v: () => v };
}

/** The MLP: fc_out(act(fc_in(x))), or gated fc_out(act(gate(x)) · fc_in(x)) (SwiGLU, GeGLU). x [rows, d] -> [rows, d]. */
function mlp(ctx: Ctx, x: string, w: BlockWeights): string {
  const up = linear(ctx, x, w.fcIn); // [rows, d_mlp]
  const hidden = w.gate ? ctx.b.op('Mul', [activation(ctx, linear(ctx, x, w.gate)), up]) : activation(ctx, up); // [rows, d_mlp]
  return linear(ctx, hidden, w.fcOut); // [rows, d]
}

/**
 * Scaled scores, soft-capped where the model caps them (Gemma 2): fp32 [..., T_q, T_k], masked
 * by the caller after this, as in Hugging Face.
 */
function scores(ctx: Ctx, dots32: string): string {
  const { b, c } = ctx;
  const scaled = b.op('Mul', [dots32, b.constFloat([c.attnScale], 'float32')]);
  return c.attnScoresSoftCap === null ? scaled : softCap(ctx, scaled, c.attnScoresSoftCap, 'float32');
}

/**
 * Key/value heads repeated for the query heads they serve (grouped-query attention): x [..., KV, T, dh]
 * with its head axis at `axis` -> [..., H, T, dh]; query head h reads key/value head h / (H / KV).
 */
function repeatKv(ctx: Ctx, x: string, axis: number): string {
  const { b, c } = ctx;
  const group = c.nHeads / c.nKeyValueHeads;
  if (group === 1) return x;
  const expanded = b.op('Expand', [b.op('Unsqueeze', [x, b.constInt64([axis + 1])]), b.constInt64([...Array(axis + 1).fill(1), group, 1, 1])]); // [..., KV, g, T, dh]
  return b.op('Reshape', [expanded, b.constInt64([...Array(axis).fill(0), c.nHeads, -1, c.dHead])]); // [..., H, T, dh]
}

/** Is layer l one of the sliding-window (local) layers? */
function isLocal(ctx: Ctx, l: number): boolean {
  return ctx.c.windowSize !== null && ctx.c.attnTypes[l] === 'local';
}

/**
 * Causal self-attention over whole sequences: rows are batch*seq positions, each attending to the
 * positions up to its own (and, in sliding-window layers, fewer than windowSize back).
 * `positions` [seq] is 0..seq-1; `batch` and `seq` are [1] shape slices.
 */
export function causalSelfAttention(ctx: Ctx, o: { batch: string; seq: string; positions: string; rotary?: Attention['rotary'] }): Attention {
  const { b, c } = ctx;
  const pos = o.positions;
  const keyPos = b.op('Unsqueeze', [pos, b.constInt64([0])]); // [1, seq]
  const queryPos = b.op('Unsqueeze', [pos, b.constInt64([1])]); // [seq, 1]
  const hidden = (masked: string) => b.op('Where', [masked, b.constFloat([-1e30], 'float32'), b.constFloat([0], 'float32')]); // [seq, seq]
  // 0 where key <= query, a large negative number above the diagonal.
  const later = b.op('Greater', [keyPos, queryPos]); // [seq, seq]
  const causal = hidden(later);
  // Sliding window: keys windowSize or more positions back are hidden too.
  const windowed = c.windowSize === null ? causal : hidden(b.op('Or', [later, b.op('Greater', [b.op('Sub', [queryPos, keyPos]), b.constInt64([c.windowSize - 1], [])])]));
  const shape = (n: number) => b.op('Concat', [o.batch, o.seq, b.constInt64([n, c.dHead])], { axis: 0 }); // [batch, seq, n, dh]
  const headShape = shape(c.nHeads);
  return {
    headShape,
    kvHeadShape: c.nKeyValueHeads === c.nHeads ? headShape : shape(c.nKeyValueHeads),
    rank: 4,
    perm: [0, 2, 1, 3], // <-> [batch, n, seq, dh]
    rotary: o.rotary,
    attend(q32, k32, v, l) {
      const keys = repeatKv(ctx, k32, 1); // [batch, H, seq, dh] fp32
      const dots = b.op('MatMul', [q32, b.op('Transpose', [keys], { perm: [0, 1, 3, 2] })]); // [batch, H, seq, seq] fp32
      const probs = softmaxFromFloat32(ctx, b.op('Add', [scores(ctx, dots), isLocal(ctx, l) ? windowed : causal])); // [batch, H, seq, seq]
      return b.op('MatMul', [probs, repeatKv(ctx, v, 1)]); // [batch, H, seq, dh]
    },
  };
}

/**
 * One new position per row, attending to a shared cached prefix and to itself: rows are
 * independent patched runs of the same target prompt, so each row's own key is the only one not
 * shared. prefix_key / prefix_value are [nLayers, KV, prefix, dh] in the compute type; every row
 * sits at `position` [1] (= prefix length), which decides the sliding window's reach into the prefix.
 */
export function prefixAttention(ctx: Ctx, o: { prefixKey: string; prefixValue: string; position: string; rotary?: Attention['rotary'] }): Attention {
  const { b, c } = ctx;
  // In sliding-window layers, prefix keys at position − s ≥ windowSize are hidden; the row's own key never is.
  const windowMask = () => {
    const prefixPos = b.op('Range', [b.constInt64([0], []), b.op('Squeeze', [o.position]), b.constInt64([1], [])]); // [prefix]
    const far = b.op('Greater', [b.op('Sub', [o.position, prefixPos]), b.constInt64([c.windowSize! - 1], [])]); // [prefix]
    const mask = b.op('Where', [far, b.constFloat([-1e30], 'float32'), b.constFloat([0], 'float32')]); // [prefix]
    return b.op('Concat', [mask, b.constFloat([0], 'float32', [1])], { axis: 0 }); // [prefix+1]
  };
  let windowed: string | undefined;
  return {
    headShape: b.constInt64([-1, c.nHeads, c.dHead]), // [rows, H, dh]
    kvHeadShape: b.constInt64([-1, c.nKeyValueHeads, c.dHead]), // [rows, KV, dh]
    rank: 3,
    perm: [1, 0, 2], // <-> [n, rows, dh]
    rotary: o.rotary,
    attend(q32, k32, v, l) {
      const layer = b.constInt64([l], []);
      const pk32 = repeatKv(ctx, toFloat32(ctx, b.op('Gather', [o.prefixKey, layer], { axis: 0 })), 0); // [H, prefix, dh] fp32
      const pv = repeatKv(ctx, b.op('Gather', [o.prefixValue, layer], { axis: 0 }), 0); // [H, prefix, dh]
      const toPrefix = b.op('MatMul', [q32, b.op('Transpose', [pk32], { perm: [0, 2, 1] })]); // [H, rows, prefix] fp32
      const toSelf = b.op('ReduceSum', [b.op('Mul', [q32, repeatKv(ctx, k32, 0)]), b.constInt64([-1])], { keepdims: 1 }); // [H, rows, 1] fp32
      let s = scores(ctx, b.op('Concat', [toPrefix, toSelf], { axis: 2 })); // [H, rows, prefix+1] fp32
      if (isLocal(ctx, l)) s = b.op('Add', [s, (windowed ??= windowMask())]);
      const probs = softmaxFromFloat32(ctx, s); // [H, rows, prefix+1]
      const pPrefix = b.op('Slice', [probs, b.constInt64([0]), b.constInt64([-1]), b.constInt64([2])]); // [H, rows, prefix]
      const pSelf = b.op('Slice', [probs, b.constInt64([-1]), b.constInt64([Number.MAX_SAFE_INTEGER]), b.constInt64([2])]); // [H, rows, 1]
      return b.op('Add', [b.op('MatMul', [pPrefix, pv]), b.op('Mul', [pSelf, repeatKv(ctx, v, 0)])]); // [H, rows, dh]
    },
  };
}
