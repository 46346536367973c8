import onnxPkg from 'onnx-proto';
import { describe, expect, test } from 'vitest';
import { expectedWeightShapes, parseGptjConfig } from '../src-main/engine/config.ts';
import { buildFullGraph, buildStepGraph, buildUnembedGraph, type GraphOptions } from '../src-main/engine/graph/gptj-graphs.ts';
import { allWeightNames, blockWeights } from '../src-main/engine/graph/weight-names.ts';

const config = parseGptjConfig(
  { model_type: 'gptj', n_embd: 32, n_head: 4, n_layer: 2, rotary_dim: 4, n_positions: 16, vocab_size: 50 },
  'config.json',
);
const shapes = expectedWeightShapes(config);

/** The checkpoint keys a graph registers as weights, read back from the encoded model. */
function weightsRead(build: (o: GraphOptions) => Uint8Array): string[] {
  const model = build({
    config,
    dtype: 'float16',
    place: (name) => {
      const shape = shapes.get(name);
      if (!shape) throw new Error(`the graph asked for ${name}, which is not a checkpoint key`);
      const byteLength = 2 * shape.reduce((a, b) => a * b, 1);
      return { ref: { name, dtype: 'F16', shape, file: '/nowhere/model.safetensors', offset: 0, byteLength }, location: 'model.safetensors', offset: 0 };
    },
  });
  const initializer = onnxPkg.onnx.ModelProto.decode(model).graph?.initializer ?? [];
  return initializer.filter((t) => t.externalData?.length).map((t) => t.name!).sort();
}

describe('weight names', () => {
  test('the graphs together read every weight the config expects of a checkpoint, and the weight plan places the same list', () => {
    const read = new Set([buildFullGraph, buildStepGraph, buildUnembedGraph].flatMap(weightsRead));
    const expected = [...shapes.keys()].sort();
    expect([...read].sort()).toEqual(expected);
    expect([...allWeightNames(config)].sort()).toEqual(expected);
  });

  test('the step graph reads only block weights, and the unembed graph only ln_f and lm_head', () => {
    const blocks = Array.from({ length: config.nLayers }, (_, l) => Object.values(blockWeights(l))).flat();
    expect(weightsRead(buildStepGraph)).toEqual(blocks.flatMap((p) => (p.bias ? [p.weight, p.bias] : [p.weight])).sort());
    expect(weightsRead(buildUnembedGraph)).toEqual(['lm_head.bias', 'lm_head.weight', 'transformer.ln_f.bias', 'transformer.ln_f.weight']);
  });

  test('block weights are the Hugging Face keys of that block', () => {
    expect(blockWeights(3)).toEqual({
      ln1: { weight: 'transformer.h.3.ln_1.weight', bias: 'transformer.h.3.ln_1.bias' },
      q: { weight: 'transformer.h.3.attn.q_proj.weight' },
      k: { weight: 'transformer.h.3.attn.k_proj.weight' },
      v: { weight: 'transformer.h.3.attn.v_proj.weight' },
      out: { weight: 'transformer.h.3.attn.out_proj.weight' },
      fcIn: { weight: 'transformer.h.3.mlp.fc_in.weight', bias: 'transformer.h.3.mlp.fc_in.bias' },
      fcOut: { weight: 'transformer.h.3.mlp.fc_out.weight', bias: 'transformer.h.3.mlp.fc_out.bias' },
    });
  });
});
