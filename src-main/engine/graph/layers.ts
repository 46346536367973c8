import type { ModelConfig, RopeScaling } from '../model-config.ts';
import { GraphBuilder } from './onnx-builder.ts';
import { type NormParams, type Params, topWeights } from './weight-names.ts';

/** The compute element type of a graph: fp32 on CPU, fp16 on CUDA. */
export type ComputeType = 'float32' | 'float16';

/**
 * What every layer function needs: the builder, the config, the compute type and `w`,
 * which registers a checkpoint tensor (by its Hugging Face key) and returns its name.
 */
export interface Ctx {
  readonly b: GraphBuilder;
  readonly c: ModelConfig;
  readonly dt: ComputeType;
  w(name: string): string;
}

/** The model's norm on x [rows, d]: LayerNorm, or RMSNorm (times (1 + w) in Gemma). */
export function norm(ctx: Ctx, x: string, p: NormParams): string {
  if (ctx.c.normalizationType === 'LN') return layerNorm(ctx, x, p);
  return rmsNorm(ctx, x, p);
}

function layerNorm(ctx: Ctx, x: string, p: NormParams): string {
  return ctx.b.op('LayerNormalization', [x, ctx.w(p.weight), ...(p.bias ? [ctx.w(p.bias)] : [])], {
    axis: -1,
    epsilon: { float: ctx.c.layerNormEps },
  });
}

/**
 * x / √(mean(x²) + eps) · w, the mean taken in fp32 as Hugging Face does: in fp16 one x² of a
 * residual past 256 is already inf. Llama scales the normalised x in the compute type; Gemma
 * multiplies by (1 + w) in fp32 before casting back.
 */
function rmsNorm(ctx: Ctx, x: string, p: NormParams): string {
  const { b, c } = ctx;
  const x32 = toFloat32(ctx, x); // [rows, d] fp32
  const meanSquare = b.op('ReduceMean', [b.op('Mul', [x32, x32])], { axes: [-1], keepdims: 1 }); // [rows, 1]
  const normed = b.op('Div', [x32, b.op('Sqrt', [b.op('Add', [meanSquare, b.constFloat([c.layerNormEps], 'float32')])])]); // [rows, d] fp32
  const w = ctx.w(p.weight); // [d]
  if (!c.normWeightPlusOne) return b.op('Mul', [toCompute(ctx, normed), w]);
  return toCompute(ctx, b.op('Mul', [normed, b.op('Add', [toFloat32(ctx, w), b.constFloat([1], 'float32')])]));
}

/** x [rows, in] -> [rows, out]. HF stores Linear weights as [out, in] (transB reads them in place), GPT-2's Conv1D as [in, out]. */
export function linear(ctx: Ctx, x: string, p: Params): string {
  const inputs = p.bias ? [x, ctx.w(p.weight), ctx.w(p.bias)] : [x, ctx.w(p.weight)];
  return ctx.b.op('Gemm', inputs, { transB: p.transposed ? 0 : 1 });
}

/** The MLP's activation, elementwise. */
export function activation(ctx: Ctx, x: string): string {
  const { b, dt } = ctx;
  switch (ctx.c.actFn) {
    case 'gelu_new':
      return geluNew(ctx, x);
    case 'gelu': // 0.5 x (1 + erf(x / √2))
      return b.op('Mul', [b.op('Mul', [x, b.op('Add', [b.op('Erf', [b.op('Mul', [x, b.constFloat([Math.SQRT1_2], dt)])]), b.constFloat([1], dt)])]), b.constFloat([0.5], dt)]);
    case 'silu': // x σ(x)
      return b.op('Mul', [x, b.op('Sigmoid', [x])]);
  }
}

/** gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
function geluNew(ctx: Ctx, x: string): string {
  const { b, dt } = ctx;
  const x3 = b.op('Mul', [b.op('Mul', [x, x]), x]);
  const inner = b.op('Mul', [b.op('Add', [x, b.op('Mul', [x3, b.constFloat([0.044715], dt)])]), b.constFloat([Math.sqrt(2 / Math.PI)], dt)]);
  const gate = b.op('Add', [b.op('Tanh', [inner]), b.constFloat([1], dt)]);
  return b.op('Mul', [b.op('Mul', [x, gate]), b.constFloat([0.5], dt)]);
}

/** cap · tanh(x / cap), in x's type (Gemma 2's soft-capping of attention scores and of logits). */
export function softCap(ctx: Ctx, x: string, cap: number, type: ComputeType): string {
  const { b } = ctx;
  return b.op('Mul', [b.op('Tanh', [b.op('Div', [x, b.constFloat([cap], type)])]), b.constFloat([cap], type)]);
}

/**
 * The rotary inverse frequencies base^(-2i/rotaryDim), i < rotaryDim/2, with Llama 3's (or linear)
 * scaling as Hugging Face's modeling_rope_utils applies it: long wavelengths slowed by `factor`,
 * short ones kept, the band between blended smoothly.
 */
export function inverseFrequencies(c: Pick<ModelConfig, 'rotaryDim' | 'rotaryBase' | 'ropeScaling'>): number[] {
  const freqs = Array.from({ length: c.rotaryDim / 2 }, (_, i) => 1 / c.rotaryBase ** ((2 * i) / c.rotaryDim));
  const s: RopeScaling | null = c.ropeScaling;
  if (!s) return freqs;
  if (s.ropeType === 'linear') return freqs.map((f) => f / s.factor);
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return freqs.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f;
    if (wavelen > lowFreqWavelen) return f / s.factor;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/**
 * cos and sin of the rotary angles for the given positions, shaped to broadcast against a head
 * tensor [..., nHeads, dHead] viewed as rotated pairs: [..positionShape, 1, rotaryDim/2, 1] for
 * GPT-J's interleaved pairs [..., nHeads, rotaryDim/2, 2], [..positionShape, 1, rotaryDim/2] for
 * the rotate-half halves [..., nHeads, rotaryDim/2].
 */
export function rotaryTables(ctx: Ctx, positions: string, positionRank: number): { cos: string; sin: string } {
  const { b, c } = ctx;
  const half = c.rotaryDim / 2;
  const pos = b.op('Cast', [positions], { to: GraphBuilder.elemCode('float32') });
  // Angles are formed in fp32 even in fp16 graphs: position * freq loses digits in fp16 past a few hundred.
  const angles = b.op('Mul', [b.op('Unsqueeze', [pos, b.constInt64([-1])]), b.constFloat(inverseFrequencies(c), 'float32', [half])]); // [...pos, half]
  const shape = b.constInt64([...Array(positionRank).fill(0), 1, half, ...(c.rotaryAdjacentPairs ? [1] : [])]);
  const shaped = (t: string) => toCompute(ctx, b.op('Reshape', [t, shape]));
  return { cos: shaped(b.op('Cos', [angles])), sin: shaped(b.op('Sin', [angles])) };
}

/**
 * Rotary embedding on the first rotaryDim dims of each head; x [...lead, nHeads, dHead] with
 * `rank` dims in total. GPT-J's "rotate every two": dims (2i, 2i+1) form a pair rotated by angle
 * position * invFreq_i. The others' "rotate half": dims (i, i + rotaryDim/2) form the pair.
 */
export function rotary(ctx: Ctx, x: string, rank: number, t: { cos: string; sin: string }): string {
  const { b, c } = ctx;
  const last = rank - 1;
  const rd = c.rotaryDim;
  const rot = b.op('Slice', [x, b.constInt64([0]), b.constInt64([rd]), b.constInt64([last])]);
  let rotated: string;
  if (c.rotaryAdjacentPairs) {
    const pairs = b.op('Reshape', [rot, b.constInt64([...Array(last).fill(0), rd / 2, 2])]); // [..., H, rd/2, 2]
    const even = b.op('Slice', [pairs, b.constInt64([0]), b.constInt64([1]), b.constInt64([rank])]); // [..., H, rd/2, 1]
    const odd = b.op('Slice', [pairs, b.constInt64([1]), b.constInt64([2]), b.constInt64([rank])]);
    const newEven = b.op('Sub', [b.op('Mul', [even, t.cos]), b.op('Mul', [odd, t.sin])]);
    const newOdd = b.op('Add', [b.op('Mul', [odd, t.cos]), b.op('Mul', [even, t.sin])]);
    rotated = b.op('Reshape', [b.op('Concat', [newEven, newOdd], { axis: rank }), b.constInt64([...Array(last).fill(0), rd])]);
  } else {
    const first = b.op('Slice', [rot, b.constInt64([0]), b.constInt64([rd / 2]), b.constInt64([last])]); // [..., H, rd/2]
    const second = b.op('Slice', [rot, b.constInt64([rd / 2]), b.constInt64([rd]), b.constInt64([last])]); // [..., H, rd/2]
    const newFirst = b.op('Sub', [b.op('Mul', [first, t.cos]), b.op('Mul', [second, t.sin])]);
    const newSecond = b.op('Add', [b.op('Mul', [second, t.cos]), b.op('Mul', [first, t.sin])]);
    rotated = b.op('Concat', [newFirst, newSecond], { axis: last }); // [..., H, rd]
  }
  if (rd === c.dHead) return rotated;
  const pass = b.op('Slice', [x, b.constInt64([rd]), b.constInt64([c.dHead]), b.constInt64([last])]);
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

/** The final norm and the head, then Gemma 2's soft-cap: x [rows, d] -> logits [rows, dVocab] in fp32. */
export function unembed(ctx: Ctx, x: string): string {
  const top = topWeights(ctx.c);
  const logits = toFloat32(ctx, linear(ctx, norm(ctx, x, top.lnF), top.lmHead)); // [rows, V] fp32
  const cap = ctx.c.outputLogitsSoftCap;
  return cap === null ? logits : softCap(ctx, logits, cap, 'float32');
}
