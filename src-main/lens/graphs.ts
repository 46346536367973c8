/**
 * The tuned lens's onnxruntime graphs, built with the project's GraphBuilder: the float64 products
 * of the fit (Gram matrices, the blocked Cholesky's updates) and the float32 apply step.
 *
 * GraphBuilder declares float32/float16/int64 values only, so the float64 graphs are built with
 * their inputs and outputs declared float32 and then re-typed to DOUBLE here: the nodes between are
 * the same, and onnxruntime type-checks the result when the session is created.
 */
import onnxPkg from 'onnx-proto';
import { GraphBuilder } from '../engine/graph/onnx-builder.ts';

const { onnx } = onnxPkg;
const DOUBLE = onnx.TensorProto.DataType.DOUBLE;

/** Re-types the named graph inputs and outputs to float64. */
function retypeToDouble(model: Uint8Array, names: readonly string[]): Uint8Array {
  const m = onnx.ModelProto.decode(model);
  for (const v of [...m.graph!.input!, ...m.graph!.output!]) {
    if (names.includes(v.name!)) v.type!.tensorType!.elemType = DOUBLE;
  }
  return onnx.ModelProto.encode(m).finish();
}

/**
 * One chunk of training rows for one layer: X [n, d] (the layer's residuals) and Y [n, d] (the
 * final residuals), both float32, shifted by float64 vectors close to their means before any
 * product (the shifted-data algorithm: the centred scatter is then a small correction, not a
 * difference of two huge numbers). Outputs, in float64: XᵀX [d, d], XᵀY [d, d], ΣX [d], ΣY [d] of
 * the shifted rows.
 */
export function gramGraph(): Uint8Array {
  const b = new GraphBuilder('tuned_lens_gram');
  const x = b.input('x', 'float32', ['n', 'd']);
  const y = b.input('y', 'float32', ['n', 'd']);
  const sx = b.input('shift_x', 'float32', ['d']); // re-typed to float64
  const sy = b.input('shift_y', 'float32', ['d']); // re-typed to float64
  const xc = b.op('Sub', [b.op('Cast', [x], { to: DOUBLE }), sx]);
  const yc = b.op('Sub', [b.op('Cast', [y], { to: DOUBLE }), sy]);
  const xt = b.op('Transpose', [xc], { perm: [1, 0] });
  b.output(b.op('MatMul', [xt, xc]), 'xtx', 'float32', ['d', 'd']);
  b.output(b.op('MatMul', [xt, yc]), 'xty', 'float32', ['d', 'd']);
  const axis0 = b.constInt64([0]);
  b.output(b.op('ReduceSum', [xc, axis0], { keepdims: 0 }), 'sum_x', 'float32', ['d']);
  b.output(b.op('ReduceSum', [yc, axis0], { keepdims: 0 }), 'sum_y', 'float32', ['d']);
  return retypeToDouble(b.encode(), ['shift_x', 'shift_y', 'xtx', 'xty', 'sum_x', 'sum_y']);
}

/** out = c − a·b in float64: a [m, k], b [k, n], c [m, n]. The blocked solver's one product. */
export function gemmGraph(): Uint8Array {
  const b = new GraphBuilder('tuned_lens_gemm');
  const a = b.input('a', 'float32', ['m', 'k']);
  const bb = b.input('b', 'float32', ['k', 'n']);
  const c = b.input('c', 'float32', ['m', 'n']);
  b.output(b.op('Sub', [c, b.op('MatMul', [a, bb])]), 'out', 'float32', ['m', 'n']);
  return retypeToDouble(b.encode(), ['a', 'b', 'c', 'out']);
}

/**
 * The apply step: rows [layers, rows, d] of the chosen layers (indices into the lens's layer axis,
 * 0 = embeddings) → rows·W + b. W [L+1, d, d] and b [L+1, d] are float32 initializers in the lens's
 * weight file, which onnxruntime memory-maps (external data), so the graph stays small whatever d.
 */
export function applyGraph(o: { layers: number; dModel: number; weightFile: string; bOffset: number }): Uint8Array {
  const { layers, dModel: d } = o;
  const b = new GraphBuilder('tuned_lens_apply');
  const rows = b.input('rows', 'float32', ['layers', 'rows', d]);
  const index = b.input('layer_index', 'int64', ['layers']);
  const wBytes = layers * d * d * 4;
  const w = b.externalWeight({ name: 'lens_w', dtype: 'F32', shape: [layers, d, d], file: o.weightFile, offset: 0, byteLength: wBytes }, o.weightFile, 0);
  const bias = b.externalWeight({ name: 'lens_b', dtype: 'F32', shape: [layers, d], file: o.weightFile, offset: o.bOffset, byteLength: layers * d * 4 }, o.weightFile, o.bOffset);
  const wSel = b.op('Gather', [w, index], { axis: 0 }); // [layers, d, d]
  const bSel = b.op('Unsqueeze', [b.op('Gather', [bias, index], { axis: 0 }), b.constInt64([1])]); // [layers, 1, d]
  b.output(b.op('Add', [b.op('MatMul', [rows, wSel]), bSel]), 'mapped', 'float32', ['layers', 'rows', d]);
  return b.encode();
}
