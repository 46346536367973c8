import { type Ctx, geluNew, layerNorm, linear, rotary, softmaxFromFloat32, toFloat32 } from './layers.ts';
import { type BlockWeights, blockWeights } from './weight-names.ts';

/**
 * How a block's attention lays out its heads and gathers keys and values; the block itself is the
 * same in every graph. Heads are split as [...lead, H, dh] from the [rows, d] projections and
 * attended as [..., H, T, dh] after `perm` (its own inverse): T runs over the positions of one
 * sequence in `full`, over independent rows in `step`.
 */
export interface Attention {
  /** Shape tensor splitting [rows, d] into [...lead, H, dh]. */
  readonly headShape: string;
  /** Rank of [...lead, H, dh]. */
  readonly rank: number;
  readonly perm: number[];
  readonly rotary: { cos: string; sin: string };
  /** softmax(q·kᵀ/√dh) v: q and k in fp32 and v in the compute type, [..., H, T, dh]; the result in the compute type. */
  attend(q32: string, k32: string, v: string, l: number): string;
}

/** What a block hands on: the new residual stream, and its keys (after rotary) and values for a cache. */
export interface BlockOut {
  readonly residPost: string; // [rows, d]
  readonly key: string; // [..., H, T, dh]
  readonly value: string; // [..., H, T, dh]
}

/** Block l of GPT-J on residual rows [rows, d]. */
export function block(ctx: Ctx, l: number, residPre: string, attention: Attention): BlockOut {
  const { b } = ctx;
  const w = blockWeights(l);
  const x = layerNorm(ctx, residPre, w.ln1); // ln_1(resid_pre) [rows, d]
  const { out: attnOut, key, value } = attn(ctx, l, x, w, attention); // attnOut [rows, d]
  const mlpOut = mlp(ctx, x, w); // [rows, d]
  // GPT-J's parallel residual: attention and MLP both read ln_1(resid_pre), so there is no resid_mid.
  const residPost = b.op('Add', [residPre, b.op('Add', [attnOut, mlpOut])]); // [rows, d]
  return { residPost, key, value };
}

function attn(ctx: Ctx, l: number, x: string, w: BlockWeights, at: Attention) {
  const { b, c } = ctx;
  const heads = (proj: string, rotate: boolean) => {
    const split = b.op('Reshape', [proj, at.headShape]); // [...lead, H, dh]
    return b.op('Transpose', [rotate ? rotary(ctx, split, at.rank, at.rotary) : split], { perm: at.perm }); // [..., H, T, dh]
  };
  const q = heads(linear(ctx, x, w.q), true); // [..., H, T, dh]
  const key = heads(linear(ctx, x, w.k), true); // [..., H, T, dh]
  const value = heads(linear(ctx, x, w.v), false); // [..., H, T, dh]
  // q and k meet in fp32, as in Hugging Face's GPT-J: one fp16 q·k can pass 65504 and turn a row of scores into inf.
  const z = at.attend(toFloat32(ctx, q), toFloat32(ctx, key), value, l); // [..., H, T, dh]
  const merged = b.op('Reshape', [b.op('Transpose', [z], { perm: at.perm }), b.constInt64([-1, c.dModel])]); // [rows, d]
  return { out: linear(ctx, merged, w.out), key, value }; // out [rows, d]
}

/** fc_out(gelu_new(fc_in(x))): x [rows, d] -> [rows, d]. */
function mlp(ctx: Ctx, x: string, w: BlockWeights): string {
  const hidden = geluNew(ctx, linear(ctx, x, w.fcIn)); // [rows, d_mlp]
  return linear(ctx, hidden, w.fcOut); // [rows, d]
}

function scale(ctx: Ctx): string {
  return ctx.b.constFloat([1 / Math.sqrt(ctx.c.dHead)], 'float32');
}

/**
 * Causal self-attention over whole sequences: rows are batch*seq positions, each attending to the
 * positions up to its own. `positions` [seq] is 0..seq-1; `batch` and `seq` are [1] shape slices.
 */
export function causalSelfAttention(ctx: Ctx, o: { batch: string; seq: string; positions: string; rotary: Attention['rotary'] }): Attention {
  const { b, c } = ctx;
  const pos = o.positions;
  // 0 where key <= query, a large negative number above the diagonal.
  const later = b.op('Greater', [b.op('Unsqueeze', [pos, b.constInt64([0])]), b.op('Unsqueeze', [pos, b.constInt64([1])])]); // [seq, seq]
  const causal = b.op('Where', [later, b.constFloat([-1e30], 'float32'), b.constFloat([0], 'float32')]); // [seq, seq]
  return {
    headShape: b.op('Concat', [o.batch, o.seq, b.constInt64([c.nHeads, c.dHead])], { axis: 0 }), // [batch, seq, H, dh]
    rank: 4,
    perm: [0, 2, 1, 3], // <-> [batch, H, seq, dh]
    rotary: o.rotary,
    attend(q32, k32, v) {
      const dots = b.op('MatMul', [q32, b.op('Transpose', [k32], { perm: [0, 1, 3, 2] })]); // [batch, H, seq, seq] fp32
      const probs = softmaxFromFloat32(ctx, b.op('Add', [b.op('Mul', [dots, scale(ctx)]), causal])); // [batch, H, seq, seq]
      return b.op('MatMul', [probs, v]); // [batch, H, seq, dh]
    },
  };
}

/**
 * One new position per row, attending to a shared cached prefix and to itself: rows are
 * independent patched runs of the same target prompt, so each row's own key is the only one not
 * shared. prefix_key / prefix_value are [nLayers, H, prefix, dh] in the compute type.
 */
export function prefixAttention(ctx: Ctx, o: { prefixKey: string; prefixValue: string; rotary: Attention['rotary'] }): Attention {
  const { b, c } = ctx;
  return {
    headShape: b.constInt64([-1, c.nHeads, c.dHead]), // [rows, H, dh]
    rank: 3,
    perm: [1, 0, 2], // <-> [H, rows, dh]
    rotary: o.rotary,
    attend(q32, k32, v, l) {
      const layer = b.constInt64([l], []);
      const pk32 = toFloat32(ctx, b.op('Gather', [o.prefixKey, layer], { axis: 0 })); // [H, prefix, dh] fp32
      const pv = b.op('Gather', [o.prefixValue, layer], { axis: 0 }); // [H, prefix, dh]
      const toPrefix = b.op('MatMul', [q32, b.op('Transpose', [pk32], { perm: [0, 2, 1] })]); // [H, rows, prefix] fp32
      const toSelf = b.op('ReduceSum', [b.op('Mul', [q32, k32]), b.constInt64([-1])], { keepdims: 1 }); // [H, rows, 1] fp32
      const probs = softmaxFromFloat32(ctx, b.op('Mul', [b.op('Concat', [toPrefix, toSelf], { axis: 2 }), scale(ctx)])); // [H, rows, prefix+1]
      const pPrefix = b.op('Slice', [probs, b.constInt64([0]), b.constInt64([-1]), b.constInt64([2])]); // [H, rows, prefix]
      const pSelf = b.op('Slice', [probs, b.constInt64([-1]), b.constInt64([Number.MAX_SAFE_INTEGER]), b.constInt64([2])]); // [H, rows, 1]
      return b.op('Add', [b.op('MatMul', [pPrefix, pv]), b.op('Mul', [pSelf, v])]); // [H, rows, dh]
    },
  };
}
