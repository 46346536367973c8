import type { GptjConfig } from '../config.ts';
import { GraphBuilder } from './onnx-builder.ts';
import { type NormParams, type Params, TOP_WEIGHTS } from './weight-names.ts';

/** The compute element type of a graph: fp32 on CPU, fp16 on CUDA. */
export type ComputeType = 'float32' | 'float16';

/**
 * What every layer function needs: the builder, the config, the compute type and `w`,
 * which registers a checkpoint tensor (by its Hugging Face key) and returns its name.
 */
export interface Ctx {
  readonly b: GraphBuilder;
  readonly c: GptjConfig;
  readonly dt: ComputeType;
  w(name: string): string;
}

export function layerNorm(ctx: Ctx, x: string, p: NormParams): string {
  return ctx.b.op('LayerNormalization', [x, ctx.w(p.weight), ctx.w(p.bias)], {
    axis: -1,
    epsilon: { float: ctx.c.layerNormEps },
  });
}

/** x [rows, in] -> [rows, out]. HF stores Linear weights as [out, in]; transB reads them in place. */
export function linear(ctx: Ctx, x: string, p: Params): string {
  const inputs = p.bias ? [x, ctx.w(p.weight), ctx.w(p.bias)] : [x, ctx.w(p.weight)];
  return ctx.b.op('Gemm', inputs, { transB: 1 });
}

/** gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluNew(ctx: Ctx, x: string): string {
  const { b, dt } = ctx;
  const x3 = b.op('Mul', [b.op('Mul', [x, x]), x]);
  const inner = b.op('Mul', [b.op('Add', [x, b.op('Mul', [x3, b.constFloat([0.044715], dt)])]), b.constFloat([Math.sqrt(2 / Math.PI)], dt)]);
  const gate = b.op('Add', [b.op('Tanh', [inner]), b.constFloat([1], dt)]);
  return b.op('Mul', [b.op('Mul', [x, gate]), b.constFloat([0.5], dt)]);
}

/**
 * cos and sin of the rotary angles for the given positions, shaped [..positionShape, 1, rotaryDim/2, 1]
 * so they broadcast against a head tensor viewed as interleaved pairs [..., nHeads, rotaryDim/2, 2].
 */
export function rotaryTables(ctx: Ctx, positions: string, positionRank: number): { cos: string; sin: string } {
  const { b, c } = ctx;
  const half = c.rotaryDim / 2;
  const invFreq = Array.from({ length: half }, (_, i) => 1 / 10000 ** ((2 * i) / c.rotaryDim));
  const pos = b.op('Cast', [positions], { to: GraphBuilder.elemCode('float32') });
  // Angles are formed in fp32 even in fp16 graphs: position * freq loses digits in fp16 past a few hundred.
  const angles = b.op('Mul', [b.op('Unsqueeze', [pos, b.constInt64([-1])]), b.constFloat(invFreq, 'float32', [half])]); // [...pos, half]
  const shape = b.constInt64([...Array(positionRank).fill(0), 1, half, 1]);
  const shaped = (t: string) => toCompute(ctx, b.op('Reshape', [t, shape]));
  return { cos: shaped(b.op('Cos', [angles])), sin: shaped(b.op('Sin', [angles])) };
}

/**
 * Rotary embedding on the first rotaryDim dims of each head, GPT-J's "rotate every two":
 * dims (2i, 2i+1) form a pair rotated by angle position * invFreq_i.
 * x [...lead, nHeads, dHead] with `rank` dims in total.
 */
export function rotary(ctx: Ctx, x: string, rank: number, t: { cos: string; sin: string }): string {
  const { b, c } = ctx;
  const last = rank - 1;
  const rot = b.op('Slice', [x, b.constInt64([0]), b.constInt64([c.rotaryDim]), b.constInt64([last])]);
  const pairs = b.op('Reshape', [rot, b.constInt64([...Array(last).fill(0), c.rotaryDim / 2, 2])]); // [..., H, rd/2, 2]
  const even = b.op('Slice', [pairs, b.constInt64([0]), b.constInt64([1]), b.constInt64([rank])]); // [..., H, rd/2, 1]
  const odd = b.op('Slice', [pairs, b.constInt64([1]), b.constInt64([2]), b.constInt64([rank])]);
  const newEven = b.op('Sub', [b.op('Mul', [even, t.cos]), b.op('Mul', [odd, t.sin])]);
  const newOdd = b.op('Add', [b.op('Mul', [odd, t.cos]), b.op('Mul', [even, t.sin])]);
  const rotated = b.op('Reshape', [b.op('Concat', [newEven, newOdd], { axis: rank }), b.constInt64([...Array(last).fill(0), c.rotaryDim])]);
  if (c.rotaryDim === c.dHead) return rotated;
  const pass = b.op('Slice', [x, b.constInt64([c.rotaryDim]), b.constInt64([c.dHead]), b.constInt64([last])]);
  return b.op('Concat', [rotated, pass], { axis: last });
}

export function toFloat32(ctx: Ctx, x: string): string {
  return ctx.dt === 'float32' ? x : ctx.b.op('Cast', [x], { to: GraphBuilder.elemCode('float32') });
}

export function toCompute(ctx: Ctx, xF32: string): string {
  return ctx.dt === 'float32' ? xF32 : ctx.b.op('Cast', [xF32], { to: GraphBuilder.elemCode(ctx.dt) });
}

/**
 * Softmax over the last axis of fp32 scores. The callers form those scores from q and k cast to
 * fp32 before their product, as Hugging Face's GPT-J does; the probabilities come back in the
 * compute type for the product with v.
 */
export function softmaxFromFloat32(ctx: Ctx, scoresF32: string): string {
  return toCompute(ctx, ctx.b.op('Softmax', [scoresF32], { axis: -1 }));
}

/** ln_f + lm_head: x [rows, d] -> logits [rows, dVocab] in fp32. */
export function unembed(ctx: Ctx, x: string): string {
  return toFloat32(ctx, linear(ctx, layerNorm(ctx, x, TOP_WEIGHTS.lnF), TOP_WEIGHTS.lmHead));
}
