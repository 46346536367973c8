import onnxPkg from 'onnx-proto';
import type { TensorRef } from '../tensor-ref.ts';

const { onnx } = onnxPkg;
const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

export type ElemType = 'float32' | 'float16' | 'int64' | 'uint16' | 'uint32';
const ELEM: Record<ElemType, number> = { float32: DT.FLOAT, float16: DT.FLOAT16, int64: DT.INT64, uint16: DT.UINT16, uint32: DT.UINT32 };
const REF_DTYPE = { F32: DT.FLOAT, F16: DT.FLOAT16, BF16: DT.BFLOAT16 } as const;

/** A dimension is fixed (number) or symbolic (string, e.g. "batch"). */
export type Dim = number | string;
/**
 * Plain numbers are INT attributes; wrap floats as `{ float: x }` so 1.0 is not mistaken for an int,
 * and a subgraph (an `If` branch) as `{ graph: builder }`.
 */
type AttrValue = number | number[] | string | { float: number } | { graph: GraphBuilder };

/**
 * A small builder over onnx-proto: every `op` call appends one node and returns the
 * names of its outputs, so graph code reads as a sequence of tensor assignments.
 *
 * A subgraph builder (`subgraph`) makes the body of an `If` branch. It has nodes and outputs of its
 * own and reads any value of the graph around it by name; inputs, weights and constants always go
 * to the top graph, so a weight that both branches read is one initializer, stored (and uploaded to
 * a device) once. Names come from one counter per model: ONNX forbids a subgraph to reuse a name of
 * an enclosing graph.
 */
export class GraphBuilder {
  private readonly nodes: onnxPkg.onnx.INodeProto[] = [];
  private readonly inits: onnxPkg.onnx.ITensorProto[] = [];
  private readonly inputs: onnxPkg.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxPkg.onnx.IValueInfoProto[] = [];
  private readonly constCache = new Map<string, string>();
  private counter = 0;
  private readonly root: GraphBuilder;

  constructor(
    private readonly name: string,
    parent?: GraphBuilder,
  ) {
    this.root = parent?.root ?? this;
  }

  /** The body of a branch, built with the same calls; pass it to `op` as `{ graph: sub }`. */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(name, this);
  }

  input(name: string, type: ElemType, dims: Dim[]): string {
    if (this.root !== this) throw new Error(`graph input ${name} belongs to the top graph, not the ${this.name} branch`);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(value: string, name: string, type: ElemType, dims: Dim[]): void {
    this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** An initializer whose bytes stay in a weight file; `location` is relative to the session's weight folder. */
  externalWeight(ref: TensorRef, location: string, offset: number): string {
    if (this.root !== this) return this.root.externalWeight(ref, location, offset);
    this.inits.push({
      name: ref.name,
      dims: [...ref.shape],
      dataType: REF_DTYPE[ref.dtype],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(ref.byteLength) },
      ],
    });
    return ref.name;
  }

  /** Small constants are stored inline and deduplicated. */
  constInt64(values: number[], dims: Dim[] = [values.length]): string {
    return this.constant(`i64:${dims.join('x')}:${values.join(',')}`, () => ({
      dims: dims as number[],
      dataType: DT.INT64,
      int64Data: values,
    }));
  }

  constFloat(values: number[], type: 'float32' | 'float16', dims: number[] = []): string {
    const f32 = this.constant(`f32:${dims.join('x')}:${values.join(',')}`, () => ({
      dims,
      dataType: DT.FLOAT,
      floatData: values,
    }));
    return type === 'float32' ? f32 : this.memo(`cast16:${f32}`, () => this.op('Cast', [f32], { to: DT.FLOAT16 }));
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    return this.opN(opType, inputs, 1, attrs, outName ? [outName] : undefined)[0];
  }

  opN(opType: string, inputs: string[], nOut: number, attrs: Record<string, AttrValue> = {}, outNames?: string[]): string[] {
    const output = outNames ?? Array.from({ length: nOut }, () => `${opType.toLowerCase()}_${this.root.counter++}`);
    this.nodes.push({
      opType,
      input: inputs,
      output,
      name: `${opType}_${this.root.counter++}`,
      attribute: Object.entries(attrs).map(([name, v]) => attribute(name, v)),
    });
    return output;
  }

  /** Element type code for Cast's `to` attribute. */
  static elemCode(type: ElemType): number {
    return ELEM[type];
  }

  encode(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'logitscope-lab',
      opsetImport: [{ domain: '', version: 17 }],
      graph: this.graphProto(),
    });
    return onnx.ModelProto.encode(model).finish();
  }

  graphProto(): onnxPkg.onnx.IGraphProto {
    return { name: this.name, node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs };
  }

  private constant(key: string, make: () => onnxPkg.onnx.ITensorProto): string {
    if (this.root !== this) return this.root.constant(key, make);
    return this.memo(key, () => {
      const name = `const_${this.counter++}`;
      this.inits.push({ ...make(), name });
      return name;
    });
  }

  private memo(key: string, make: () => string): string {
    let name = this.constCache.get(key);
    if (name === undefined) {
      name = make();
      this.constCache.set(key, name);
    }
    return name;
  }
}

function valueInfo(name: string, type: ElemType, dims: Dim[]): onnxPkg.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): onnxPkg.onnx.IAttributeProto {
  if (typeof v === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: v };
  if (typeof v === 'object' && 'graph' in v) return { name, type: AT.GRAPH, g: v.graph.graphProto() };
  if (typeof v === 'object') return { name, type: AT.FLOAT, f: v.float };
  return { name, type: AT.INT, i: v };
}
