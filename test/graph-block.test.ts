import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxPkg from 'onnx-proto';
import { describe, expect, test } from 'vitest';
import { openCheckpoint } from '../src-main/engine/checkpoint.ts';
import { expectedWeightShapes, parseGptjConfig } from '../src-main/engine/config.ts';
import { buildBlocksGraph, buildUnembedGraph, type GraphOptions } from '../src-main/engine/graph/gptj-graphs.ts';
import { allWeightNames, blockWeights } from '../src-main/engine/graph/weight-names.ts';
import { prepareModel } from '../src-main/engine/model-build.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

type Graph = onnxPkg.onnx.IGraphProto;

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
    const read = new Set([buildBlocksGraph, buildUnembedGraph].flatMap(weightsRead));
    const expected = [...shapes.keys()].sort();
    expect([...read].sort()).toEqual(expected);
    expect([...allWeightNames(config)].sort()).toEqual(expected);
  });

  test('the unembed graph reads only ln_f and lm_head', () => {
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

/** The graph and every subgraph under it (If branches), depth first. */
function graphsIn(g: Graph): Graph[] {
  const subs = (g.node ?? []).flatMap((n) => (n.attribute ?? []).flatMap((a) => (a.g ? graphsIn(a.g) : [])));
  return [g, ...subs];
}

describe('one copy of the weights', () => {
  test('exactly one session graph holds the block weights, each once, and every one of its bodies (source, prefix, step) reads every one', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'graph-block-'));
    const ckpt = writeTinyGptj({ dir: path.join(tmp, 'model'), format: 'safetensors', seed: 2, config: { n_layer: 3 } });
    const built = await prepareModel(openCheckpoint(ckpt.dir), 'float16', path.join(tmp, 'cache'));
    const blockKeys = [...ckpt.weights.keys()].filter((k) => k.startsWith('transformer.h.'));
    expect(blockKeys.length).toBe(3 * 10); // ln_1 (2), q, k, v, out_proj, fc_in (2), fc_out (2)

    // Every initializer of every graph a session loads (the built model's files are the sessions' models).
    const holders = new Map<string, string[]>();
    for (const [name, bytes] of Object.entries(built.graphs)) {
      for (const g of graphsIn(onnxPkg.onnx.ModelProto.decode(bytes).graph!)) {
        for (const t of g.initializer ?? []) holders.set(t.name!, [...(holders.get(t.name!) ?? []), `${name}/${g.name}`]);
      }
    }
    for (const key of blockKeys) expect(holders.get(key), key).toEqual(['blocks/gptj_blocks']);
    const blockHolders = [...holders].filter(([k]) => k.startsWith('transformer.h.'));
    expect(blockHolders.length).toBe(blockKeys.length);

    // The If branches read the top graph's initializers by name: each body uses every block weight.
    const top = onnxPkg.onnx.ModelProto.decode(built.graphs.blocks).graph!;
    const branches = graphsIn(top).slice(1);
    expect(branches.map((g) => g.name).sort()).toEqual(['prefix', 'source', 'step', 'whole_prompts']);
    for (const branch of branches) {
      const read = new Set(graphsIn(branch).flatMap((g) => (g.node ?? []).flatMap((n) => n.input ?? [])));
      expect(blockKeys.filter((k) => !read.has(k)), branch.name!).toEqual([]);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});
